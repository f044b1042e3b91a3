#!/bin/bash
# Leader failover: three nodes on 127.0.0.1 (ports 18101-3, 17201-3, 17310-32;
# an insecure cluster, for a measurement only), the Raft leader SIGKILLed
# TRIES times (default 10); each time, the time from the kill to the next 202
# of POST /v1/jobs on a survivor, then the killed node is started again on
# its data dir. Prints one line per try and the median.
#   bench/scripts/leader-failover.sh [TRIES]   (after make build and make corpus)
set -u
TRIES=${1:-10}
Q=${QUIRE:-bin/quire}
D=$(mktemp -d); trap 'for i in 1 2 3; do kill $(cat $D/n$i.pid) 2>/dev/null; done; rm -rf $D' EXIT
export QUIRE_ADMIN_TOKEN=qa_failover_test_token_of_more_than_32_chars
PDF=${PDF:-${QUIRE_CORPUS:-$HOME/.cache/quire-corpus}/camlidl-manual-26p.pdf}   # make corpus fetches it
[ -f "$PDF" ] || { echo "no PDF at $PDF: run make corpus, or set PDF" >&2; exit 1; }
JOIN=127.0.0.1:17201,127.0.0.1:17202,127.0.0.1:17203
start() { i=$1
  $Q serve --data-dir $D/n$i --node-name n$i --http-addr 127.0.0.1:1810$i --gossip-addr 127.0.0.1:1720$i \
    --remote-addr 127.0.0.1:173${i}0 --join $JOIN --bootstrap-expect 3 --insecure-cluster --concurrency 2 \
    > $D/n$i.log 2>&1 & echo $! > $D/n$i.pid; }
for i in 1 2 3; do start $i; done
for t in $(seq 1 60); do curl -sf 127.0.0.1:18101/readyz >/dev/null && curl -sf 127.0.0.1:18102/readyz >/dev/null && curl -sf 127.0.0.1:18103/readyz >/dev/null && break; sleep 0.5; done
KEY=$(curl -s -H "Authorization: Bearer $QUIRE_ADMIN_TOKEN" -H 'Content-Type: application/json' -d '{"name":"f","credits":1000000}' 127.0.0.1:18101/v1/admin/accounts | python3 -c 'import json,sys;print(json.load(sys.stdin)["api_key"])')
for try in $(seq 1 $TRIES); do
  L=$(curl -s -H "Authorization: Bearer $QUIRE_ADMIN_TOKEN" 127.0.0.1:18101/v1/admin/cluster | python3 -c 'import json,sys;print(json.load(sys.stdin)["leader"])')
  [ -z "$L" ] && L=$(curl -s -H "Authorization: Bearer $QUIRE_ADMIN_TOKEN" 127.0.0.1:18102/v1/admin/cluster | python3 -c 'import json,sys;print(json.load(sys.stdin)["leader"])')
  i=${L#n}; s=$(( i % 3 + 1 ))
  t0=$(date +%s.%N); kill -9 $(cat $D/n$i.pid)
  while :; do code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" -F file=@$PDF 127.0.0.1:1810$s/v1/jobs); [ "$code" = 202 ] && break; sleep 0.05; done
  t1=$(date +%s.%N); took=$(python3 -c "print(round($t1-$t0,3))"); echo "try $try: leader $L killed, 202 from n$s after $took s"; all="${all:-} $took"
  start $i
  for t in $(seq 1 60); do curl -sf 127.0.0.1:1810$i/readyz >/dev/null && break; sleep 0.5; done
  sleep 2
done
python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f'median {statistics.median(v):.3f} s over {len(v)} tries (min {min(v):.3f}, max {max(v):.3f})')" $all
