#!/usr/bin/env escript
%% Writes fuzz_term's seeds (tests/fuzz/README.md): one file per term, its
%% external format as an Erlang node sends it (version byte 131 first).
%%   escript tests/fuzz/gen_corpus_term.escript tests/fuzz/corpus_term
%% A few are built by hand: the old text float and Latin-1 atom tags, pids
%% of the fuzzer's own node (fuzz@127.0.0.1, creation 16#5eed1, the one
%% fuzz_term.c sets up, and another creation), and malformed terms.
-mode(compile). % Funs as a node sends them, not the interpreter's.

main([Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Ref = make_ref(),
    Port = hd(erlang:ports()),
    Own = <<"fuzz@127.0.0.1">>,
    OwnPid = fun(Creation) ->
        <<131, $X, $w, (byte_size(Own)), Own/binary, 7:32, 1:32, Creation:32>>
    end,
    Nest = fun(N, _) when N =< 0 -> ok; (N, F) -> {F(N - 1, F)} end,
    Terms = [
        {small_int, 42},
        {integer, -123456789},
        {big_u64, (1 bsl 64) - 1},
        {big_i64_min, -(1 bsl 63)},
        {big_beyond, 1 bsl 70},
        {large_big, 1 bsl 2100},
        {float, 1.5},
        {atom, hello},
        {atom_utf8, 'h\x{e9}llo'},
        {atom_long, list_to_atom(lists:duplicate(255, 16#e9))},
        {bools, {true, false, undefined}},
        {binary, <<"bin">>},
        {binary_empty, <<>>},
        {bit_string, <<1:3>>},
        {tuple, {a, 1, <<"b">>}},
        {tuple_empty, {}},
        {tuple_large, list_to_tuple(lists:seq(1, 256))},
        {nil, []},
        {string, "str"},
        {list, [a, 1, <<"c">>, 2.5]},
        {improper, [1 | 2]},
        {map, #{a => 1, <<"k">> => [1.5, x], 7 => #{}}},
        {pid, self()},
        {ref, Ref},
        {port, Port},
        {'fun', fun() -> Ref end},
        {fun_export, fun erlang:abs/1},
        {nested, {[{x, [1, {y, #{z => "s"}}]}], -1, [[[]]]}},
        {nested_32, Nest(32, Nest)}, % The deepest taken.
        {nested_33, Nest(33, Nest)},
        {gen_call, {'$gen_call', {self(), Ref}, {incr, 41}}},
        {gen_call_alias, {'$gen_call', {self(), [alias | Ref]}, [x, "str"]}},
        {grove, {'$grove', 7, <<"payload">>}},
        {reply, {Ref, {ok, 1}}}
    ],
    Hand = [
        {float_text, term_to_binary(1.5, [{minor_version, 0}])},
        {atom_latin1, <<131, $d, 0, 6, "h", 16#e9, "llo!">>},
        {atom_latin1_small, <<131, $s, 3, "abc">>},
        {own_pid, OwnPid(16#5eed1)},
        {own_pid_old, OwnPid(3)},
        %% Malformed: each made libei read or write out of bounds before
        %% gr__term_end, or is a size to refuse before reading on.
        {bad_atom_truncated, <<131, $h, 2, $d, 16#6464:16, "dd", $a, 1>>},
        {bad_atom_latin1_long,
            <<131, $d, 1020:16, (binary:copy(<<"a">>, 1019))/binary, 16#e9>>},
        {bad_atom_utf8, <<131, $w, 2, 16#c0, 16#80>>},
        {bad_atom_chars, <<131, $v, 256:16, (binary:copy(<<"a">>, 256))/binary>>},
        {bad_float_text, <<131, $c, (binary:copy(<<"1">>, 31))/binary>>},
        {bad_binary_size, <<131, $m, 16#ffffffff:32, "ab">>},
        {bad_tuple_arity, <<131, $i, 16#7fffffff:32, $j>>},
        {bad_list_empty, <<131, $l, 0:32, $j>>},
        {bad_ref_words, <<131, $Z, 6:16, $w, 1, "a", 0:32, 0:(6 * 32)>>}
    ],
    [write(Dir, N, term_to_binary(T)) || {N, T} <- Terms],
    [write(Dir, N, B) || {N, B} <- Hand],
    ok.

write(Dir, Name, Bin) ->
    ok = file:write_file(filename:join(Dir, atom_to_list(Name)), Bin).
