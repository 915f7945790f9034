#!/usr/bin/env bash
# bench/build-delayed-plugin.sh SRC OUT: builds RabbitMQ's delayed-message plugin for the Debian
# RabbitMQ 3.10 package (which does not ship it) with Debian's erlc, for D1's
# BENCH_D1_PLUGIN_DIR=OUT and for checking warren's x-delayed-message against the real thing.
#
#   SRC  a checkout of github.com/rabbitmq/rabbitmq-delayed-message-exchange at tag 3.10.2
#        (the release for RabbitMQ 3.10)
#   OUT  where rabbitmq_delayed_message_exchange-3.10.2/ebin goes
#
# Then: RABBITMQ_PLUGINS_DIR=<the package's plugins dir>:OUT before the node starts, and
# `rabbitmq-plugins enable rabbitmq_delayed_message_exchange` (bench/delayed.sh does both).
set -euo pipefail
SRC=${1:?usage: bench/build-delayed-plugin.sh SRC OUT}
OUT=${2:?usage: bench/build-delayed-plugin.sh SRC OUT}
P=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins | head -1)
COMMON=$(ls -d "$P"/rabbit_common-* | head -1)
RABBIT=$(ls -d "$P"/rabbit-[0-9]* | head -1)
EBIN=$OUT/rabbitmq_delayed_message_exchange-3.10.2/ebin
mkdir -p "$EBIN"
erlc -I "$COMMON/include" -pa "$COMMON/ebin" -pa "$RABBIT/ebin" -o "$EBIN" "$SRC"/src/*.erl
modules=$(cd "$EBIN" && ls *.beam | sed 's/\.beam$//' | paste -sd, -)
cat > "$EBIN/rabbitmq_delayed_message_exchange.app" <<APP
{application, rabbitmq_delayed_message_exchange, [
  {description, "RabbitMQ Delayed Message Exchange"},
  {vsn, "3.10.2"},
  {modules, [$modules]},
  {registered, []},
  {applications, [kernel, stdlib, rabbit_common, rabbit]},
  {mod, {rabbit_delayed_message_app, []}},
  {env, []},
  {broker_version_requirements, ["3.10.0"]}
]}.
APP
echo "built $EBIN"
