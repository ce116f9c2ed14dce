#!/usr/bin/env escript
%% Writes fuzz_frames' seeds (tests/fuzz/README.md): one file per byte
%% stream as a peer node sends it after the handshake, frames of a 4-byte
%% length then 'p', the control tuple and the message (each with its
%% version byte), ticks being empty frames.
%%   escript tests/fuzz/gen_corpus_frames.escript tests/fuzz/corpus_frames
%% Pids and references of the fuzzer's own node (fuzz@127.0.0.1, creation
%% 16#5eed1, as fuzz_dist.h sets up) are built by hand; the peer is
%% peer@127.0.0.1. Its references with first word 16#2a7e5 and 16#2a7e6
%% are the ones dist/monitor.c makes for monitors and asks.
main([Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Own = fun(Num) -> pid(<<"fuzz@127.0.0.1">>, Num, 16#5eed1) end,
    Peer = pid(<<"peer@127.0.0.1">>, 42, 3),
    Ours = fun(Ids) -> ref(<<"fuzz@127.0.0.1">>, 16#5eed1, Ids) end,
    Ref = ref(<<"peer@127.0.0.1">>, 3, [1, 2, 3]),
    Me = Own(1),
    Frames = [
        {tick, <<0:32>>},
        {send_grove, frame({2, '', Me}, {'$grove', 7, <<1, 2, 3>>, Peer})},
        {reg_send_term, frame({6, Peer, '', fuzzy},
                              {hello, 1, <<"b">>, [1, 2], #{a => 1.5}})},
        {reg_send_nobody, frame({6, Peer, '', nobody}, hi)},
        {reg_send_call, frame({6, Peer, '', fuzzy},
                              {'$gen_call', {Peer, Ref}, {incr, 41}})},
        {send_reply, frame({2, '', Me},
                           {Ours([5, 0, 16#67726f76]), {pong, 42}})},
        {send_sender, frame({22, Peer, Me}, {'$grove', 9, <<>>, Peer})},
        {link, frame({1, Peer, Me})},
        {unlink_id, frame({35, 7, Peer, Me})},
        {exit, frame({3, Peer, Me, boom})},
        {exit2, frame({8, Peer, Me, {grove, 'GR_EFAILED', <<"shot">>}})},
        {monitor_name, frame({19, Peer, fuzzy, Ref})},
        {demonitor_name, frame({20, Peer, fuzzy, Ref})},
        {monitor_nobody, frame({19, Peer, nobody, Ref})},
        %% A watcher's pid on another node than the connection's: the
        %% monitor still goes with the connection.
        {monitor_foreign_watcher,
         frame({19, pid(<<"other@127.0.0.1">>, 1, 1), fuzzy, Ref})},
        {monitor_pid, frame({19, Peer, Me, Ref})},
        {monitor_exit_ours, frame({21, Peer, Me, Ours([16#2a7e5, 5, 0]),
                                   normal})},
        {monitor_exit_ask, frame({21, Peer, Me, Ours([16#2a7e6, 9, 0]),
                                  {badarith, []}})},
        {not_passthrough, <<4:32, "xyzw">>},
        {control_cut, cut(frame({1, Peer, Me}))},
        {over_limit, <<(1 bsl 21):32, $p>>}
    ],
    [ok = file:write_file(filename:join(Dir, atom_to_list(N)), B)
     || {N, B} <- Frames],
    Good = [B || {N, B} <- Frames,
                 not lists:member(N, [not_passthrough, control_cut,
                                      over_limit])],
    ok = file:write_file(filename:join(Dir, "stream_all"), Good),
    ok = file:write_file(filename:join(Dir, "monitor_then_demonitor"),
                         [element(2, lists:keyfind(K, 1, Frames))
                          || K <- [monitor_name, demonitor_name]]),
    ok.

pid(Node, Num, Creation) ->
    binary_to_term(<<131, $X, $w, (byte_size(Node)), Node/binary, Num:32,
                     0:32, Creation:32>>).

ref(Node, Creation, Ids) ->
    binary_to_term(<<131, $Z, (length(Ids)):16, $w, (byte_size(Node)),
                     Node/binary, Creation:32,
                     << <<I:32>> || I <- Ids >>/binary>>).

frame(Control) -> with_length([$p, term_to_binary(Control)]).
frame(Control, Msg) ->
    with_length([$p, term_to_binary(Control), term_to_binary(Msg)]).

with_length(Body) ->
    B = iolist_to_binary(Body),
    <<(byte_size(B)):32, B/binary>>.

%% A frame whose length is right but whose control tuple is cut short.
cut(<<_:32, P, Rest/binary>>) ->
    Short = binary:part(Rest, 0, byte_size(Rest) - 3),
    <<(byte_size(Short) + 1):32, P, Short/binary>>.
