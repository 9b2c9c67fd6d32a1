#!/usr/bin/env python3
"""Checks what tools/numa-vm-guest.sh printed on a guest's serial console (tools/numa-vm-check.sh).

usage: numa_vm_verify.py --nodes N [--accel kvm|tcg] [--seconds S] CONSOLE_LOG
Prints one line per check and a summary as JSON on the last line; exits 1 on the first failure.
"""
import argparse
import json
import re
import sys


def sections(text):
    out, name, lines = {}, None, []
    for line in text.replace("\r", "").split("\n"):
        if line.startswith("@@LW section "):
            name, lines = line.split(" ", 2)[2].strip(), []
        elif line.startswith("@@LW end") and name:
            out[name] = "\n".join(lines)
            name = None
        elif line.startswith("@@LW run-status "):
            out["run-status"] = int(line.split()[2])
        elif name:
            lines.append(line)
    return out


def json_of(text, what):
    start = text.find("{")
    if start < 0:
        fail(f"{what}: no JSON in the guest's output:\n{text[-2000:]}")
    try:
        return json.JSONDecoder().raw_decode(text[start:])[0]
    except json.JSONDecodeError as e:
        fail(f"{what}: bad JSON ({e}):\n{text[-2000:]}")


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def ok(message):
    print(f"   ok: {message}", file=sys.stderr)


def data_maps(text):
    """The data-copy lines of each process's numa_maps: {comm: {copy node: (policy, {node: pages})}}."""
    out, proc = {}, None
    for line in text.splitlines():
        m = re.match(r"@ (\S+) pid=(\d+)", line.strip())
        if m:
            proc = m.group(1)
            out[proc] = {}
            continue
        m = re.search(r"^\S+ (\S+) file=/memfd:lapwing-data\.[A-Za-z0-9_-]+\.node(\d+)", line.strip())
        if m and proc:
            pages = {int(k): int(v) for k, v in re.findall(r"\bN(\d+)=(\d+)", line)}
            out[proc][int(m.group(2))] = (m.group(1), pages)
    return out


def check_data_copies(s, placement, nodes):
    maps = data_maps(s["data_maps"])
    host = maps.get("lw-host")
    if host is None or sorted(host) != sorted(nodes):
        fail(f"numa_maps of the job host shows data copies for nodes {sorted(host or {})}, not one per node {sorted(nodes)}:\n{s['data_maps']}")
    sizes = {}
    for node, (policy, pages) in sorted(host.items()):
        if policy != f"bind:{node}" or set(pages) != {node} or pages[node] == 0:
            fail(f"numa_maps of the job host: the data copy for node {node} has policy {policy} and pages {pages}")
        sizes[node] = pages[node]
    ok("numa_maps of the job host: one copy of the training data per node, bound there, every page on it: "
       + ", ".join(f"node {k}: bind:{k} N{k}={v} pages" for k, v in sorted(sizes.items())))
    for w in placement["workers"]:
        mine = maps.get(f"lw-worker-{w['worker']}")
        if mine is None:
            fail(f"no numa_maps of lw-worker-{w['worker']}:\n{s['data_maps']}")
        policy, pages = mine.get(w["node"], ("none", {}))
        if set(pages) != {w["node"]} or pages[w["node"]] == 0:
            fail(f"lw-worker-{w['worker']} (node {w['node']}) has read pages {pages} of its node's data copy:\n{s['data_maps']}")
        others = {k: p for k, (_, p) in mine.items() if k != w["node"] and sum(p.values()) > 0}
        if others:
            fail(f"lw-worker-{w['worker']} (node {w['node']}) has read pages of other nodes' copies: {others}")
    ok("numa_maps of each worker: it reads its own node's copy, and no other: "
       + ", ".join(f"worker {w['worker']}: N{w['node']}={maps[f'lw-worker-' + str(w['worker'])][w['node']][1][w['node']]}"
                   for w in placement["workers"]))
    arena = json_of(s["data_arena"], "lapwing-numa arena (data copies)")
    copies = {c["node"]: c for c in arena.get("dataCopies") or []}
    if sorted(copies) != sorted(nodes):
        fail(f"lapwing-numa arena shows data copies on nodes {sorted(copies)}, not {sorted(nodes)}")
    for w in placement["workers"]:
        readers = [r["role"] for r in copies[w["node"]]["readers"]]
        if f"worker {w['worker']}" not in readers:
            fail(f"lapwing-numa arena: the copy on node {w['node']} is read by {readers}, not worker {w['worker']}")
    ok("lapwing-numa arena shows the copies and their readers: "
       + ", ".join(f"node {k} {c['bytes'] / 2**20:.1f} MiB read by {', '.join(r['role'] for r in c['readers'])}"
                   for k, c in sorted(copies.items())))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--accel", default="kvm")
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("console")
    a = ap.parse_args()
    n = a.nodes
    s = sections(open(a.console, errors="replace").read())
    for need in ["topology", "workers", "arena", "numa_maps", "data_maps", "data_arena", "run", "default_replicas", "bench"]:
        if need not in s:
            fail(f"the guest printed no '{need}' section")

    topo = json_of(s["topology"], "lapwing-numa topology")
    nodes = {node["osIndex"]: node["cpus"] for node in topo["topology"]["nodes"]}
    if len(nodes) != n or any(len(c) != 1 for c in nodes.values()):
        fail(f"lapwing-numa topology shows nodes {nodes}, not {n} nodes of one CPU each")
    ok(f"lapwing-numa topology shows {n} nodes: " + ", ".join(f"node {k}: CPU {v[0]}" for k, v in sorted(nodes.items())))
    placement = topo["placement"]
    worker_nodes = sorted(w["node"] for w in placement["workers"])
    if worker_nodes != sorted(nodes):
        fail(f"placement of {n} workers uses nodes {worker_nodes}, not one worker on each of {sorted(nodes)}")
    replica_nodes = [r["node"] for r in placement["replicas"]]
    if sorted(replica_nodes) != sorted(nodes):
        fail(f"placement of {n} replicas puts them on nodes {replica_nodes}")
    for w in placement["workers"]:
        if w["cpu"] not in nodes[w["node"]] or placement["replicas"][w["replica"]]["node"] != w["node"]:
            fail(f"placement: worker {w} is not on a CPU of its node with its node's replica")
    ok(f"placement spreads {n} workers over all {n} nodes, each training the replica on its own node")

    if s.get("run-status") != 130 or "interrupted" not in s["run"]:
        fail(f"the lap-sgd job, stopped with SIGINT after the checks, did not end interrupted (status {s.get('run-status')}):\n{s['run']}")
    if "lapwing." in s.get("shm-after", "lapwing."):
        fail(f"the stopped job left its arena: /dev/shm holds {s.get('shm-after')}")
    samples = re.search(r"(\d+) samples in", s["run"])
    ok(f"the lap-sgd job ({n} workers, {n} replicas, mlp:784-16-10) trained"
       + (f" {samples.group(1)} samples" if samples else "") + " and, stopped with SIGINT after the checks, ended interrupted and removed its arena")
    seen = {}
    for line in s["workers"].splitlines():
        m = re.match(r"lw-worker-(\d+) pid=(\d+) psr=(\d+) allowed=(\S+)", line.strip())
        if m:
            seen[int(m.group(1))] = (int(m.group(3)), m.group(4))
    if len(seen) != n:
        fail(f"saw {len(seen)} workers running, not {n}:\n{s['workers']}")
    for w in placement["workers"]:
        psr, allowed = seen[w["worker"]]
        if allowed != str(w["cpu"]) or psr != w["cpu"]:
            fail(f"lw-worker-{w['worker']} may run on CPUs {allowed} and ran on {psr}; its place is CPU {w['cpu']} of node {w['node']}")
    ok("each worker is pinned to (Cpus_allowed_list) and runs on (ps psr) the CPU of its node: "
       + ", ".join(f"worker {w['worker']} on CPU {w['cpu']} (node {w['node']})" for w in placement["workers"]))

    arena = json_of(s["arena"], "lapwing-numa arena")
    if len(arena["replicas"]) != n:
        fail(f"the job's arena has {len(arena['replicas'])} replicas, not {n}")
    for r in arena["replicas"]:
        want = placement["replicas"][r["index"]]["node"]
        if r["intendedNode"] != want or any(p != want for p in r["pageNodes"]):
            fail(f"replica {r['index']}: bound to node {r['intendedNode']}, pages on nodes {r['pageNodes']}; placement says node {want}")
    ok("each replica's pages are on its node (move_pages/get_mempolicy, "
       + f"{len(arena['replicas'][0]['pageNodes'])} pages each): "
       + ", ".join(f"replica {r['index']} on node {r['intendedNode']}" for r in arena["replicas"]))
    bound = {}
    for line in s["numa_maps"].splitlines():
        m = re.search(r" bind:(\d+) .*/dev/shm/lapwing", line)
        if m:
            pages = {int(k): int(v) for k, v in re.findall(r"\bN(\d+)=(\d+)", line)}
            if set(pages) != {int(m.group(1))}:
                fail(f"numa_maps of the job host: a range bound to node {m.group(1)} has pages on nodes {pages}:\n{line}")
            bound[int(m.group(1))] = bound.get(int(m.group(1)), 0) + pages[int(m.group(1))]
    if sorted(bound) != sorted(nodes):
        fail(f"numa_maps of the job host shows arena ranges bound to nodes {sorted(bound)}, not to all {n}:\n{s['numa_maps']}")
    ok("numa_maps of the job host: each bound range of the arena has its pages on its node only: "
       + ", ".join(f"bind:{k} N{k}={v}" for k, v in sorted(bound.items())))

    check_data_copies(s, placement, nodes)

    lines = [l for l in s.get("default_replicas", "").splitlines() if l.startswith("{")]
    job = json.loads(lines[-1]) if lines else {}
    if job.get("outcome") != "completed" or job.get("replicas") != min(n, 2):
        fail(f"a 2-worker lap-sgd job with the default replicas did not complete with {min(n, 2)} replicas:\n{s.get('default_replicas')}")
    ok(f"a 2-worker lap-sgd job with the default replicas has {job['replicas']} (one per node its workers span) and completed")

    bench = json_of(s["bench"], "lapwing-numa bench")
    pairs = {(p["cpuNode"], p["memoryNode"]): p for p in bench["memory"]}
    if len(pairs) != n * n:
        fail(f"bench measured {len(pairs)} node pairs, not {n * n}")
    bad = [p for p in bench["memory"] if p["pagesOnNode"] != 1]
    if bad:
        fail(f"bench: pages not on their node in {bad}")
    if "remoteOverLocal" not in bench:
        fail("bench reports no remote/local figures")
    ok(f"bench: {n * n} node pairs, every buffer's pages on its node; remote/local read "
       f"{bench['remoteOverLocal']['readGBps']:.2f}x, latency {bench['remoteOverLocal']['latencyNanoseconds']:.2f}x")
    for (c, m), p in sorted(pairs.items()):
        print(f"      cpu node {c} -> memory node {m}: read {p['readGBps']:.2f} GB/s, write {p['writeGBps']:.2f} GB/s, "
              f"latency {p['latencyNanoseconds']:.1f} ns{' (local)' if p['local'] else ''}", file=sys.stderr)
    if len(bench["sharing"]) != n * (n - 1) // 2:
        fail(f"bench: {len(bench['sharing'])} shared-line pairs, not {n * (n - 1) // 2}")
    av = bench["averaging"]
    if any(sorted(x["replicaNodes"]) != sorted(nodes) or x["pagesOnNodes"] != 1 for x in av):
        fail(f"bench: averaging replicas not one per node on their nodes: {av}")
    ok(f"bench: a shared cache line for each of the {len(bench['sharing'])} pairs of nodes; averaging with one replica per node at "
       + ", ".join(f"{x['ratioToMemcpy']:.2f}x memcpy ({x['parameters']} floats)" for x in av)
          + "; GEMM 64x784x256 on each node " + ", ".join("%.3g" % g["gflops"] for g in bench["gemm"] if g["shape"] == "64x784x256")
       + " GFLOP/s")
    summary = {"nodes": n, "accel": a.accel, "seconds": a.seconds, "passed": True,
               "remoteOverLocal": bench["remoteOverLocal"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
