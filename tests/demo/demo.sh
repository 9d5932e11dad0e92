#!/usr/bin/env bash
# `make demo`: the whole product in one run, on a fresh machine.
#
#   1. builds the pinned Pulumi toolchain (provider/scripts/toolchain.sh), the server and the
#      provider plugin (make build) and a loopback receiver;
#   2. starts a receiver on 127.0.0.1 and `pulumi-webhooks serve` on the embedded default
#      store, the same file the provider uses when it has no configuration;
#   3. runs `pulumi up` on examples/yaml with its URLs pointed at the receiver, while the
#      server watches the file backend (`serve --watch`);
#   4. runs Pulumi as a user would (a failing `pulumi up`, `pulumi refresh`, a preview through
#      `pulumi-webhooks pulumi --`): the events come from Pulumi itself, with no emit step;
#      prints what the receiver got: the headers, whether the signatures verify, the payload;
#   5. cleans up: `pulumi destroy`, stops the processes it started, removes its directory.
#
# Everything lives in one directory, $PULUMI_WEBHOOKS_DEMO_DIR (default
# ${XDG_CACHE_HOME:-~/.cache}/pulumi-webhooks/demo), so the demo never touches your own
# webhook store or Pulumi settings: XDG_DATA_HOME points into it, which moves the default store
# (and nothing else about how it is found) there. The directory is recreated on every run, so
# the demo runs any number of times in a row.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
demo="${PULUMI_WEBHOOKS_DEMO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-webhooks/demo}"
org=organization # the organization of every stack on a local file backend
project=webhooks-example-yaml
stack=dev
started=$(date +%s)

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'; else bold='' dim='' reset=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
run() { printf '%s$ %s%s\n' "$dim" "$*" "$reset"; "$@"; }
die() { printf '%sdemo failed: %s%s\n' "$bold" "$*" "$reset" >&2; exit 1; }

# stop_pidfile stops the process whose ID a pid file of this demo holds and removes the file.
# "ours" (the default) is a child this run started: it is stopped and reaped. "leftover" is
# one an interrupted run left behind: it is stopped only if its environment still has the
# demo's XDG_DATA_HOME, so a process that took over its ID since is left alone.
stop_pidfile() {
  local file=$1 mode=${2:-ours} pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  rm -f "$file"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  if [ "$mode" = ours ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 0
  fi
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "XDG_DATA_HOME=$demo/data" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT
  if [ -f "$demo/project/Pulumi.$stack.yaml" ]; then
    say "Cleaning up: pulumi destroy, then stopping the server and the receiver"
    (cd "$demo/project" && pulumi destroy --yes --skip-preview --non-interactive >"$demo/destroy.log" 2>&1) \
      && echo "Destroyed the stack's webhooks." \
      || { echo "pulumi destroy failed; see $demo/destroy.log"; status=1; }
  fi
  stop_pidfile "$demo/server.pid"
  stop_pidfile "$demo/receiver.pid"
  if [ "$status" -eq 0 ]; then
    rm -rf "$demo"
    printf '\n%sDemo finished in %ss.%s Run it again any time: make demo\n' "$bold" "$(($(date +%s) - started))" "$reset"
  else
    printf '\nThe demo failed; its logs are in %s (removed by the next run).\n' "$demo" >&2
  fi
  exit "$status"
}

# One demo at a time: a second one waits for the first (they share the directory).
mkdir -p "$(dirname "$demo")"
if command -v flock >/dev/null; then
  exec 9>"$demo.lock"
  flock -n 9 || { echo "Another make demo is running; waiting for it to finish."; flock 9; }
fi

# A previous run that was interrupted may have left its processes and files.
stop_pidfile "$demo/server.pid" leftover
stop_pidfile "$demo/receiver.pid" leftover
rm -rf "$demo"
mkdir -p "$demo"/{bin,data,home,state,project,deliveries}
trap cleanup EXIT

say "Building the pinned Pulumi CLI and YAML language host (several minutes the first time, cached afterwards)"
toolbin=$(bash "$root/provider/scripts/toolchain.sh")
say "Building pulumi-webhooks and the provider plugin"
run make -C "$root" --no-print-directory build
(cd "$root" && go build -o "$demo/bin/demo-receiver" ./tests/demo/receiver)

# The demo's own world: its Pulumi home and file backend, and the default webhook store moved
# into the demo directory. No PULUMI_WEBHOOKS_* setting of the caller applies.
while IFS='=' read -r name _; do
  case "$name" in PULUMI_*) unset "$name" ;; esac
done < <(env)
export XDG_DATA_HOME="$demo/data"
export PULUMI_HOME="$demo/home" PULUMI_BACKEND_URL="file://$demo/state" PULUMI_CONFIG_PASSPHRASE=demo
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true NO_COLOR=1
ln -s "$root/bin/pulumi-webhooks" "$demo/bin/pulumi-webhooks"
export PATH="$toolbin:$demo/bin:$PATH" # pulumi, the YAML host, pulumi-webhooks

# The secret the webhooks sign with: made up for this run, never printed.
secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

say "Installing the provider plugin into the demo's Pulumi home (what make install does for yours)"
run pulumi plugin install resource pulumiservice 0.1.0 --file "$root/bin/pulumi-resource-pulumiservice" --reinstall

say "Starting a webhook receiver on 127.0.0.1"
DEMO_WEBHOOK_SECRET="$secret" "$demo/bin/demo-receiver" --addr-file "$demo/receiver.addr" \
  --save-dir "$demo/deliveries" >"$demo/receiver.log" 2>&1 &
echo $! >"$demo/receiver.pid"
for _ in $(seq 100); do [ -s "$demo/receiver.addr" ] && break; sleep 0.1; done
[ -s "$demo/receiver.addr" ] || die "the receiver did not start; see $demo/receiver.log"
receiver="http://$(cat "$demo/receiver.addr")"
echo "Receiver listening on $receiver"

say "Starting the server on the embedded default store (no --store: the default path), watching the Pulumi backend"
printf '%s$ pulumi-webhooks serve --listen 127.0.0.1:0 --allow-target 127.0.0.1/32 --watch file://%s%s\n' "$dim" "$demo/state" "$reset"
pulumi-webhooks serve --listen 127.0.0.1:0 --allow-target 127.0.0.1/32 --poll-interval 200ms \
  --watch "file://$demo/state" >"$demo/server.log" 2>&1 &
echo $! >"$demo/server.pid"
for _ in $(seq 150); do grep -q 'msg=listening' "$demo/server.log" && break; sleep 0.1; done
grep -q 'msg=listening' "$demo/server.log" || die "the server did not start; see $demo/server.log"
grep 'msg=listening' "$demo/server.log" | sed 's/^/  /'

say "pulumi up on examples/yaml (the provider has no configuration: it uses the same default store)"
cp -R "$root/examples/yaml/." "$demo/project/"
cd "$demo/project"
run pulumi stack init "$stack" --non-interactive
run pulumi config set receiverUrl "$receiver/pulumi"
run pulumi config set slackWebhookUrl "$receiver/slack"
printf '%s$ pulumi config set --secret webhookSecret ********%s\n' "$dim" "$reset"
pulumi config set --secret webhookSecret "$secret"
run pulumi up --yes --skip-preview --non-interactive
up_ended=$(date +%s%N)
say "The webhooks the server now serves"
run pulumi-webhooks hooks list

# deliveries_for waits until the receiver holds n deliveries and says how long they took.
deliveries_for() {
  local n=$1 since=$2 got=0
  for _ in $(seq 600); do
    got=$(grep -c '^=== delivery' "$demo/receiver.log" || true)
    [ "$got" -ge "$n" ] && break
    sleep 0.05
  done
  [ "$got" -ge "$n" ] || die "the receiver got $got of $n deliveries in 30s; see $demo/server.log"
  echo "Receiver: $got deliveries so far, the last $(( ($(date +%s%N) - since) / 1000000 )) ms after pulumi exited."
}

say "That pulumi up fired update_succeeded by itself: the server saw its history entry"
deliveries_for 1 "$up_ended" # the stack's hook (group "stacks"); stack_created came before any hook

say "A failing pulumi up (an invalid payload URL): update_failed reaches all three webhooks"
printf '%s$ pulumi up --yes --skip-preview --config receiverUrl=not-a-url%s\n' "$dim" "$reset"
pulumi up --yes --skip-preview --non-interactive --config receiverUrl=not-a-url >"$demo/failed-up.log" 2>&1 \
  && die "the failing pulumi up succeeded; see $demo/failed-up.log"
ended=$(date +%s%N)
echo "pulumi up failed, as intended (its output: $demo/failed-up.log)"
deliveries_for 4 "$ended"
run pulumi config set receiverUrl "$receiver/pulumi"

say "pulumi refresh: refresh_succeeded"
run pulumi refresh --yes --skip-preview --non-interactive
deliveries_for 5 "$(date +%s%N)"

say "A preview, which no backend records, through the wrapper: preview_succeeded"
run pulumi-webhooks pulumi -- preview --non-interactive
deliveries_for 6 "$(date +%s%N)"

say "What the receiver got"
cat "$demo/receiver.log"
grep -q 'INVALID' "$demo/receiver.log" && die "a signature did not verify"

say "The delivery log of the organization webhook, as the server recorded it"
run pulumi-webhooks deliveries list "$(pulumi stack output orgHookId)"

say "Checking a signature with the CLI, as someone debugging a receiver would"
for headers in "$demo"/deliveries/*.headers; do
  sig=$(sed -n 's/^Pulumi-Webhook-Signature: //p' "$headers")
  [ -n "$sig" ] || continue
  body="${headers%.headers}.body"
  printf '%s$ pulumi-webhooks verify --secret ******** --signature %s < %s%s\n' "$dim" "$sig" "deliveries/$(basename "$body")" "$reset"
  pulumi-webhooks verify --secret "$secret" --signature "$sig" <"$body"
  break
done
