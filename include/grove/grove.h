/*
 * Grove: an Erlang/OTP-style actor framework for C11.
 *
 * Include this umbrella header to get the whole public API. Each area also
 * has a header of its own that compiles on its own.
 */
#ifndef GROVE_GROVE_H
#define GROVE_GROVE_H

#include <grove/version.h>
#include <grove/common.h>
#include <grove/log.h>
#include <grove/system.h>
#include <grove/actor.h>
#include <grove/inbox.h>
#include <grove/monitor.h>
#include <grove/link.h>
#include <grove/event.h>
#include <grove/supervisor.h>
#include <grove/ask.h>
#include <grove/deadletter.h>
#include <grove/timer.h>
#include <grove/node.h>
#include <grove/io.h>
#include <grove/dist.h>

#endif
