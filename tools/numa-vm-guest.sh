#!/bin/bash
# PID 1 of tools/numa-vm-check.sh's guest: collects what the checks need and prints it on the
# serial console between "@@LW section NAME" and "@@LW end" lines, then powers the guest off.
# It checks nothing itself: tools/numa_vm_verify.py reads the console on the host.
export PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin HOME=/root
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
exec </dev/null >/dev/console 2>&1
off() { sync; echo o >/proc/sysrq-trigger; sleep 10; }
trap off EXIT
section() { echo "@@LW section $1"; shift; "$@" 2>&1; echo "@@LW end"; }
echo "@@LW begin"
n=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
section numactl numactl --hardware
section topology lapwing-numa topology --workers "$n" --replicas "$n" --json
section topology-text lapwing-numa topology --workers "$n" --replicas "$n"

# A lap-sgd job with one worker and one replica per node, looked at while it trains, then
# stopped (SIGINT: the job ends "interrupted" and removes its arena). Under TCG a step is slow,
# so the model is small; placement does not depend on it.
mkdir -p /tmp/run
lapwing run --data idx:/usr/share/datasets/fashion-mnist --model mlp:784-16-10 --algorithm lap-sgd \
  --workers "$n" --replicas "$n" --epochs 5 --eval-every 0 --output-dir /tmp/run >/tmp/run.log 2>&1 &
run=$!
for _ in $(seq 3000); do
  [ "$(pgrep -c '^lw-worker-' || true)" = "$n" ] && [ -n "$(ls /dev/shm)" ] && break
  kill -0 $run 2>/dev/null || break
  sleep 0.1
done
workers() {
  for pid in $(pgrep '^lw-worker-'); do
    echo "$(cat /proc/$pid/comm) pid=$pid psr=$(ps -o psr= -p $pid | tr -d ' ') allowed=$(sed -n 's/^Cpus_allowed_list:\t//p' /proc/$pid/status)"
  done
}
section workers workers
job=$(ls /dev/shm | sed -n 's/^lapwing\.//p' | head -1)
section arena lapwing-numa arena "$job" --json --samples 32
section numa_maps sh -c "grep /dev/shm/lapwing /proc/$(pgrep -x lw-host | head -1)/numa_maps"
# The per-node copies of the training data (--node-data auto: on, the workers span the nodes):
# memfds lapwing-data.JOB.nodeN in the numa_maps of the host (every page: it wrote them) and of
# each worker (the pages it has read), once every worker has read some.
data_maps() {
  for pid in $(pgrep -x lw-host) $(pgrep '^lw-worker-'); do
    echo "@ $(cat /proc/$pid/comm) pid=$pid"
    grep 'memfd:lapwing-data\.' /proc/$pid/numa_maps
  done
}
for _ in $(seq 1200); do
  unread=0
  for pid in $(pgrep '^lw-worker-'); do grep -Eq 'memfd:lapwing-data\..* N[0-9]+=' /proc/$pid/numa_maps || unread=1; done
  [ $unread = 0 ] && break
  sleep 0.1
done
section data_maps data_maps
section data_arena lapwing-numa arena "$job" --json --samples 1
kill -INT $run
wait $run
echo "@@LW run-status $?"
section shm-after ls /dev/shm
section run tail -8 /tmp/run.log

# A 2-worker lap-sgd job with the default replicas (one per node the workers span): on 4 nodes
# it used to ask for 4 replicas and be refused. Small data made here (logistic on 8 features).
for i in $(seq 400); do
  echo "$(( RANDOM % 2 * 2 - 1 )) 1:$(( RANDOM % 100 )) 2:$(( RANDOM % 100 )) 3:$(( RANDOM % 7 ))"
done >/tmp/small.svm
section default_replicas lapwing run --data libsvm:/tmp/small.svm --model logistic --algorithm lap-sgd \
  --workers 2 --epochs 2 --eval-every 0 --json --output-dir /tmp/run2

section bench lapwing-numa bench --json --seconds 6 --size-mib 16 --parameters 1048576
echo "@@LW done"
