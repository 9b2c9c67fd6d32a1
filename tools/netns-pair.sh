# Two "machines" on this box for the checks across machines (sourced by mpi-netns-check.sh and
# daemons-netns-check.sh): network namespaces $nsa and $nsb joined by a veth pair ${tag}x/${tag}y
# with addresses $ipa and $ipb on $net.0/24. The caller sets tag, nsa, nsb, net, ipa and ipb
# (names of its own, from its pid), and calls netns_pair_down from its exit trap.

netns_pair_up() {
  ip netns add "$nsa"
  ip netns add "$nsb"
  ip link add "${tag}x" type veth peer name "${tag}y"
  ip link set "${tag}x" netns "$nsa"
  ip link set "${tag}y" netns "$nsb"
  ip -n "$nsa" addr add "$ipa/24" dev "${tag}x"
  ip -n "$nsb" addr add "$ipb/24" dev "${tag}y"
  for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
  ip -n "$nsa" link set "${tag}x" up
  ip -n "$nsb" link set "${tag}y" up
}

# Kills whatever still runs in the two namespaces, and removes them and the pair.
netns_pair_down() {
  local ns pids
  for ns in "$nsa" "$nsb"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "${tag}x" 2>/dev/null || true
}
