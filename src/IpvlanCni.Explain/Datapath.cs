using System.Net;
using System.Net.Sockets;
using IpvlanCni.Network;

namespace IpvlanCni.Explain;

/// <summary>An IP packet as the model carries it (an ICMP echo request or reply).</summary>
sealed record Packet(IPAddress? Source, IPAddress Destination, bool IsReply)
{
    public bool IsIPv4 => Destination.AddressFamily == AddressFamily.InterNetwork;
    public string Arp => IsIPv4 ? "ARP" : "NDP";
    public string What => IsReply ? "the reply" : "the request";
}

/// <summary>A packet on a link: the destination MAC its sender resolved (null: not an Ethernet hop).</summary>
sealed record Frame(string? DestinationMac, Packet Packet);

/// <summary>How a walk ended: delivered to a namespace's stack, lost (with the reason), or beyond what the model sees.</summary>
abstract record Outcome;
sealed record Arrived(Ns Ns, Packet Packet) : Outcome;
/// <param name="Short">The same, said of a namespace outside the node the packet was lost in ("does not forward").</param>
sealed record Lost(Loss Kind, string Cause, string? Short = null) : Outcome;
sealed record Unsure(string Cause) : Outcome;

enum Loss { Private, Vepa, NoRoute, ForwardingOff, NoNeighbour, LeftNode, OtherHost, LinkDown, NoVlan, Dropped, Loop }

/// <summary>Who answered a neighbour solicitation: the MAC, or how it failed.</summary>
readonly record struct Resolution(string? Mac, Outcome? Failure);

/// <summary>
/// The kernel's datapath for one ICMP echo round trip, one method per kernel function (drivers/net/ipvlan and the
/// IPv4/IPv6 stack functions it calls), each recording the hop it decides. Reads only the <see cref="Topology"/>.
/// </summary>
sealed class Datapath(Topology topology)
{
    // A packet that crosses more functions than this is looping (a route pointing back): the kernel's TTL would end it.
    const int Budget = 200;
    int _steps;
    readonly List<(IPAddress Original, IPAddress Translated, IPAddress Peer)> _natBindings = [];

    public List<Hop> Hops { get; set; } = [];
    /// <summary>A VEPA port sent a frame for one of its own slaves to the wire (needs a hairpinning switch).</summary>
    public bool VepaHairpin { get; private set; }
    /// <summary>Where the packet last left the node for a namespace outside it (null: it is in the node or a pod).</summary>
    public (string What, IPAddress Destination, Link Link, Ns Peer)? Exit { get; private set; }
    /// <summary>The source ping's socket got for the request (before any NAT): the reply must come back to it.</summary>
    public IPAddress? FirstSource { get; private set; }

    void Say(Ns ns, string function, string decision) => Hops.Add(new Hop(ns.Label, function, decision));

    // net/ipv4/route.c ip_route_output_key_hash_rcu, net/ipv6/route.c ip6_route_output: a locally generated packet
    // (ping's socket) is routed, its source chosen when the socket left it unbound.
    public Outcome Send(Ns ns, Packet packet)
    {
        Exit = null;
        var fib = FibLookup(ns, packet.Destination, oif: null);
        if (fib.Local is { } local)
        {
            Say(ns, "ip_route_output", $"{packet.Destination} is local (on {local.Link.Name}): delivered through loopback");
            FirstSource ??= packet.Source ?? packet.Destination;
            return new Arrived(ns, packet with { Source = packet.Source ?? packet.Destination });
        }
        if (fib.Route is not { } route)
            return Refused(ns, packet, fib.Rejecting);
        var source = packet.Source ?? SelectSource(ns, route, packet.Destination);
        if (source is null)
            return new Lost(Loss.NoRoute, $"{ns} has no {Family(packet)} address to send from.");
        FirstSource ??= source;
        Say(ns, "ip_route_output", $"route {route}: out {route.Link!.Describe()}" + (packet.Source is null ? $", source {source}" : ""));
        return Output(ns, route.Link, route.Gateway ?? packet.Destination, packet with { Source = source });
    }

    Outcome Refused(Ns ns, Packet packet, Route? rejecting)
    {
        if (rejecting is not null)
        {
            Say(ns, "fib_lookup", $"route {rejecting} rejects {packet.Destination}");
            return new Lost(Loss.NoRoute, $"{packet.What} to {packet.Destination} hits route \"{rejecting}\" in {ns}.");
        }
        Say(ns, "fib_lookup", $"no route to {packet.Destination}: ENETUNREACH");
        return new Lost(Loss.NoRoute, $"{ns} has no route to {packet.Destination}.", $"which has no route to {packet.Destination}");
    }

    // net/ipv4/fib_trie.c fib_table_lookup (main table after the local one), net/ipv6/route.c fib6_table_lookup:
    // longest prefix, then lowest metric; routes through a link that is down do not match. With a strict output
    // interface (fib_lookup_good_nhc: flowi4_oif) only routes through that link match, the local table's too.
    (Address? Local, Route? Route, Route? Rejecting) FibLookup(Ns ns, IPAddress destination, Link? oif, bool strictOif = false)
    {
        var local = ns.Local(destination);
        if (local is not null && (!strictOif || local.Link == oif))
            return (local, null, null);
        var best = ns.Routes
            .Where(r => r.Destination.Family == destination.AddressFamily && r.Destination.Contains(destination))
            .Where(r => r.Type != 1 || r.Link is { Up: true })
            .Where(r => !strictOif || r.Link == oif)
            .OrderByDescending(r => r.Destination.PrefixLength)
            .ThenBy(r => oif is not null && r.Link == oif ? 0 : 1) // rt6_score_route: the output interface is a preference
            .ThenBy(r => r.Metric)
            .FirstOrDefault();
        return best switch
        {
            null => (null, null, null),
            { Type: 1 } => (null, best, null),
            _ => (null, null, best),
        };
    }

    // net/ipv4/devinet.c inet_select_addr, net/ipv6/addrconf.c ipv6_dev_get_saddr (RFC 6724): the route's
    // preferred source, else an address of the output link (one in the next hop's subnet first, the longest
    // matching prefix for IPv6), else any other address of the namespace.
    static IPAddress? SelectSource(Ns ns, Route route, IPAddress destination)
    {
        if (route.PreferredSource is { } preferred)
            return preferred;
        var family = destination.AddressFamily;
        bool linkLocal = destination.IsIPv6LinkLocal;
        var candidates = ns.Addresses.Where(a => a.Prefix.Family == family && !a.Tentative && a.Link.Up && !a.Link.IsLoopback
            && (family == AddressFamily.InterNetwork || a.Prefix.Address.IsIPv6LinkLocal == linkLocal)).ToList();
        var nextHop = route.Gateway ?? destination;
        return candidates.Where(a => a.Link == route.Link)
                .OrderByDescending(a => a.Prefix.Contains(nextHop))
                .ThenByDescending(a => family == AddressFamily.InterNetworkV6 ? CommonPrefix(a.Prefix.Address, destination) : 0)
                .FirstOrDefault()?.Prefix.Address
            ?? candidates.OrderByDescending(a => family == AddressFamily.InterNetworkV6 ? CommonPrefix(a.Prefix.Address, destination) : 0)
                .FirstOrDefault()?.Prefix.Address;
    }

    static int CommonPrefix(IPAddress a, IPAddress b)
    {
        byte[] x = a.GetAddressBytes(), y = b.GetAddressBytes();
        int bits = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int diff = x[i] ^ y[i];
            if (diff == 0) { bits += 8; continue; }
            return bits + System.Numerics.BitOperations.LeadingZeroCount((uint)diff) - 24;
        }
        return bits;
    }

    // net/ipv4/ip_output.c ip_finish_output2 / net/ipv6/ip6_output.c ip6_finish_output2: POSTROUTING (our NAT),
    // then the neighbour of the next hop gives the frame its destination MAC.
    Outcome Output(Ns ns, Link link, IPAddress nextHop, Packet packet)
    {
        if (++_steps > Budget)
            return new Lost(Loss.Loop, $"{packet.What} loops (a route sends it back the way it came).");
        if (!link.Up)
            return new Lost(Loss.LinkDown, $"{link.Name} in {ns} is down.");
        if (ns.IsNode && Masquerade(ns, link, nextHop, packet) is { } translated)
        {
            if (translated is Outcome unsure)
                return unsure;
            packet = (Packet)translated;
        }
        var resolved = Neighbour(ns, link, nextHop, packet);
        if (resolved.Failure is Lost { Kind: Loss.NoNeighbour } && !nextHop.Equals(packet.Destination))
            return new Lost(Loss.NoNeighbour, $"nobody answers {packet.Arp} for the gateway {nextHop} on {link.Name}.");
        if (resolved.Failure is { } failure)
            return failure;
        return Transmit(link, new Frame(resolved.Mac, packet), tag: null);
    }

    // net/netfilter/nf_nat_masquerade.c via ipvlan-cni's POSTROUTING rule (src/IpvlanCni.Plugin/Masquerade.cs):
    // from a network's subnets, out of any link but its master, to anything but its subnets: source becomes the
    // output link's address; conntrack remembers it for the reply. Returns null (no change), a Packet, or Unsure.
    object? Masquerade(Ns ns, Link link, IPAddress nextHop, Packet packet)
    {
        if (packet.Source is not { } source)
            return null;
        if (topology.Masquerade is not { } rules)
        {
            bool fromPod = topology.Holder(source) is { Link.Port: not null } holder && !holder.Ns.IsNode;
            return fromPod && link.OwnPort is null
                ? new Unsure($"whether ipvlan-cni's ipMasq rewrites {source} is unknown: its records could not be read.")
                : null;
        }
        foreach (var rule in rules)
        {
            if (!rule.Subnets.Any(s => s.Contains(source)) || rule.Master == link.Name || rule.Subnets.Any(s => s.Contains(packet.Destination)))
                continue;
            var translated = link.AddressesOf(source.AddressFamily)
                .Where(a => !a.Tentative && !a.Prefix.Address.IsIPv6LinkLocal)
                .OrderByDescending(a => a.Prefix.Contains(nextHop)).FirstOrDefault()?.Prefix.Address;
            if (translated is null)
            {
                Say(ns, "nf_nat_masquerade", $"ipMasq of network {rule.Network}: {link.Name} has no address, the packet is dropped");
                return new Lost(Loss.Dropped, $"ipvlan-cni's ipMasq has no address of {link.Name} to rewrite {source} to.");
            }
            _natBindings.Add((source, translated, packet.Destination));
            Say(ns, "nf_nat_masquerade", $"POSTROUTING, ipMasq of network {rule.Network}: source {source} -> {translated}");
            return packet with { Source = translated };
        }
        return null;
    }

    // net/core/neighbour.c neigh_resolve_output; net/ipv4/arp.c arp_constructor, net/ipv6/ndisc.c
    // ndisc_constructor: a NOARP link needs no resolution (the destination MAC is its own), a permanent entry
    // answers at once, anything else is solicited.
    Resolution Neighbour(Ns ns, Link link, IPAddress nextHop, Packet packet)
    {
        if (link.NoArp || link.IsLoopback)
        {
            Say(ns, "neigh_resolve_output", $"{link.Name} is NOARP: no {packet.Arp}, the destination MAC is its own");
            return new Resolution(link.Mac, null);
        }
        if (ns.Neighbours.FirstOrDefault(n => n.Link == link && n.Address.Equals(nextHop) && n.State is "permanent" or "noarp" && n.Mac is not null) is { } entry)
        {
            Say(ns, "neigh_resolve_output", $"{entry.State} neighbour {nextHop} lladdr {entry.Mac} on {link.Name}");
            return new Resolution(entry.Mac, null);
        }
        return Solicit(ns, link, nextHop, packet);
    }

    // net/ipv4/arp.c arp_solicit, net/ipv6/ndisc.c ndisc_send_ns: a broadcast (multicast) request for the next hop.
    Resolution Solicit(Ns ns, Link link, IPAddress target, Packet packet)
    {
        if (link.Port is { } port)
            return MulticastFromSlave(port, link, target, packet);
        Say(ns, packet.IsIPv4 ? "arp_solicit" : "ndisc_send_ns", $"{packet.Arp} request for {target} out of {link.Name}");
        return SolicitOnWire(link, target, packet);
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_xmit_mode_l2 (multicast branch), ipvlan_multicast_enqueue,
    // ipvlan_process_multicast: a slave's broadcast is copied to the port's other slaves that are up and the
    // original leaves on the master's wire; the master's own stack gets no copy (so the node never answers).
    Resolution MulticastFromSlave(Port port, Link slave, IPAddress target, Packet packet)
    {
        Say(slave.Ns, "ipvlan_xmit_mode_l2", $"{packet.Arp} request for {target} is multicast: ipvlan_multicast_enqueue copies it to the other slaves of {port.Master.Name}, the original leaves on its wire, {port.Master.Name}'s own stack gets no copy");
        foreach (var other in port.Slaves.Where(s => s != slave && s.Up))
        {
            if (Answers(other, target, packet))
            {
                Say(other.Ns, packet.IsIPv4 ? "arp_process" : "ndisc_recv_ns", $"{other.Name} holds {target}: answers");
                return new Resolution(other.Mac, null);
            }
            if (other.NoArp && other.Ns.Local(target) is not null)
                Say(other.Ns, packet.IsIPv4 ? "arp_rcv" : "ndisc_rcv", $"{other.Name} holds {target} but is NOARP: no answer");
        }
        return SolicitOnWire(port.Master, target, packet);
    }

    // Whether a link that receives a solicitation answers it: net/ipv4/arp.c arp_process answers for any address of
    // the namespace (arp_ignore=0) unless the link is NOARP (arp_rcv drops); net/ipv6/ndisc.c ndisc_recv_ns only
    // for an address of the receiving link.
    static bool Answers(Link link, IPAddress target, Packet packet)
    {
        if (link.NoArp || !link.Up)
            return false;
        var local = link.Ns.Local(target);
        return local is not null && (packet.IsIPv4 || local.Link == link);
    }

    // net/core/dev.c dev_queue_xmit of the solicitation: through VLANs to the device at the bottom, and across it.
    Resolution SolicitOnWire(Link link, IPAddress target, Packet packet)
    {
        var (bottom, tag) = Descend(link);
        string missing = $"nobody answers {packet.Arp} for {target} on {link.Name}.";
        if (bottom.Kind == "veth" && bottom.Peer is { } peer)
        {
            var arrived = Demux(peer, tag);
            if (arrived is null)
            {
                Say(peer.Ns, "vlan_do_receive", $"no VLAN {tag} on {peer.Name}: the {packet.Arp} request is dropped");
                return new Resolution(null, new Lost(Loss.NoNeighbour, missing));
            }
            var answer = ReceiveSolicitation(arrived, target, packet);
            if (answer is null)
            {
                Say(arrived.Ns, packet.IsIPv4 ? "arp_process" : "ndisc_recv_ns", $"nobody behind {arrived.Name} holds {target}: no answer");
                return new Resolution(null, new Lost(Loss.NoNeighbour, missing));
            }
            return new Resolution(answer, null);
        }
        if (bottom.Kind == "dummy")
        {
            Say(bottom.Ns, "dummy_xmit", $"{bottom.Name} is a dummy: its frames go nowhere, nobody answers");
            return new Resolution(null, new Lost(Loss.NoNeighbour, missing));
        }
        if (topology.Holder(target) is { } holder)
        {
            Say(bottom.Ns, "dev_queue_xmit", $"the {packet.Arp} request leaves the node on {bottom.Name}; {target} is {holder.Ns}'s (on {holder.Link.Name}), and frames a link sends never come back to it");
            return new Resolution(null, new Lost(Loss.NoNeighbour, missing));
        }
        Say(bottom.Ns, "dev_queue_xmit", $"the {packet.Arp} request leaves the node on {bottom.Name}");
        return new Resolution(null, new Unsure($"whether anything beyond {bottom.Name} answers {packet.Arp} for {target} is outside what the node shows."));
    }

    // A solicitation received on a link: an ipvlan master's rx_handler first (ipvlan_handle_frame), then the stack.
    string? ReceiveSolicitation(Link link, IPAddress target, Packet packet)
    {
        if (link.OwnPort is { } port)
        {
            switch (port.Mode)
            {
                case IpvlanMode.L2:
                    // ipvlan_handle_mode_l2: an external multicast frame is cloned to the slaves (ipvlan_multicast_enqueue),
                    // and the master's stack gets the original.
                    Say(link.Ns, "ipvlan_handle_mode_l2", $"{packet.Arp} request from the wire: copies to the slaves of {link.Name}, the original to its stack");
                    foreach (var slave in port.Slaves.Where(s => s.Up))
                        if (Answers(slave, target, packet))
                        {
                            Say(slave.Ns, packet.IsIPv4 ? "arp_process" : "ndisc_recv_ns", $"{slave.Name} holds {target}: answers");
                            return slave.Mac;
                        }
                    break;
                case IpvlanMode.L3:
                    // ipvlan_handle_mode_l3 keys ARP by its target address (ipvlan_get_L3_hdr); an NDP solicitation goes
                    // to a multicast address, which the hash never holds.
                    if (packet.IsIPv4 && Lookup(port, target) is { } owner)
                    {
                        Say(link.Ns, "ipvlan_handle_mode_l3", $"ARP for {target} goes to {owner.Name} in {owner.Ns}, which is NOARP (l3): dropped, nobody answers");
                        return null;
                    }
                    Say(link.Ns, "ipvlan_handle_mode_l3", $"{packet.Arp} request: not a slave's address, RX_HANDLER_PASS to {link.Name}'s stack");
                    break;
                default:
                    Say(link.Ns, "ipvlan_handle_frame", $"l3s: RX_HANDLER_PASS, {link.Name}'s stack handles the {packet.Arp} request");
                    break;
            }
        }
        if (Answers(link, target, packet))
        {
            Say(link.Ns, packet.IsIPv4 ? "arp_process" : "ndisc_recv_ns", $"{link.Name} answers for {target}");
            return link.Mac;
        }
        return null;
    }

    static (Link Bottom, int? Tag) Descend(Link link) =>
        link.Kind == "vlan" && link.Lower is { } lower ? (lower, link.VlanId) : (link, null);

    static Link? Demux(Link arrived, int? tag) =>
        tag is null ? arrived : arrived.Uppers.FirstOrDefault(u => u.Kind == "vlan" && u.VlanId == tag && u.Up);

    // A device's ndo_start_xmit: ipvlan_start_xmit -> ipvlan_queue_xmit, vlan_dev_hard_start_xmit, veth_xmit.
    Outcome Transmit(Link link, Frame frame, int? tag)
    {
        if (++_steps > Budget)
            return new Lost(Loss.Loop, $"{frame.Packet.What} loops.");
        if (!link.Up)
            return new Lost(Loss.LinkDown, $"{link.Name} in {link.Ns} is down.");
        if (link.Port is { } port)
            return QueueXmit(port, link, frame);
        if (link.Kind == "vlan" && link.Lower is { } lower)
        {
            Say(link.Ns, "vlan_dev_hard_start_xmit", $"tagged VLAN {link.VlanId}, out of {lower.Name}");
            return Transmit(lower, frame, link.VlanId);
        }
        if (link.Kind == "veth" && link.Peer is { } peer)
        {
            Say(link.Ns, "veth_xmit", $"out of {link.Name} to {peer.Name} in {peer.Ns}");
            if (link.Ns.IsNode && !peer.Ns.IsNode)
                Exit = (frame.Packet.What, frame.Packet.Destination, link, peer.Ns);
            else if (peer.Ns.IsNode)
                Exit = null;
            return WireReceive(peer, frame, tag);
        }
        if (link.Kind == "dummy")
        {
            Say(link.Ns, "dummy_xmit", $"{link.Name} is a dummy: the frame goes nowhere");
            return new Lost(Loss.Dropped, $"{frame.Packet.What} goes out of {link.Name}, a dummy device that drops everything.");
        }
        return LeavesNode(link, frame);
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_queue_xmit: every slave of a port transmits by the port's mode.
    Outcome QueueXmit(Port port, Link slave, Frame frame)
    {
        if (!port.Master.Up)
            return new Lost(Loss.LinkDown, $"{port.Master.Name}, the master of {slave.Name}, is down.");
        return port.Mode == IpvlanMode.L2 ? XmitModeL2(port, slave, frame) : XmitModeL3(port, slave, frame);
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_addr_lookup: the port's hash holds every address of its slaves that
    // are up, in any namespace (ipvlan_open / ipvlan_ht_addr_add); never the master's own addresses.
    static Link? Lookup(Port port, IPAddress address) =>
        port.Slaves.FirstOrDefault(s => s.Up && s.Ns.Addresses.Any(a => a.Link == s && a.Prefix.Address.Equals(address)));

    string MissNote(Port port, IPAddress address) =>
        port.Master.Ns.Addresses.Any(a => a.Link == port.Master && a.Prefix.Address.Equals(address))
            ? $" ({address} is {port.Master.Name}'s own address, never in the port's hash)" : "";

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_xmit_mode_l2: a frame to the shared MAC is looked up by its L3
    // destination and handed to that slave (ipvlan_rcv_frame) or, on a miss, to the master (dev_forward_skb);
    // VEPA skips that and, like any other destination MAC, sends it out of the master (dev_queue_xmit).
    Outcome XmitModeL2(Port port, Link slave, Frame frame)
    {
        var packet = frame.Packet;
        if (!port.IsVepa && frame.DestinationMac == slave.Mac)
        {
            if (Lookup(port, packet.Destination) is { } owner)
            {
                if (port.IsPrivate)
                {
                    Say(slave.Ns, "ipvlan_xmit_mode_l2", $"ipvlan_addr_lookup({packet.Destination}) hits {owner.Name} in {owner.Ns}, but the port is private: dropped");
                    return new Lost(Loss.Private, $"{port.Master.Name}'s port is private: the kernel drops traffic between its slaves.");
                }
                Say(slave.Ns, "ipvlan_xmit_mode_l2", $"destination MAC is the master's, ipvlan_addr_lookup({packet.Destination}) hits {owner.Name} in {owner.Ns}: ipvlan_rcv_frame, dev_forward_skb to it");
                return StackInput(owner, frame);
            }
            Say(slave.Ns, "ipvlan_xmit_mode_l2", $"destination MAC is the master's, ipvlan_addr_lookup({packet.Destination}) misses{MissNote(port, packet.Destination)}: dev_forward_skb to {port.Master.Name}");
            return StackInput(port.Master, frame);
        }
        if (port.IsVepa && Lookup(port, packet.Destination) is not null)
            VepaHairpin = true;
        Say(slave.Ns, "ipvlan_xmit_mode_l2", port.IsVepa
            ? $"vepa: every unicast frame leaves on the wire, dev_queue_xmit on {port.Master.Name}"
            : $"destination MAC {frame.DestinationMac} is not the master's: dev_queue_xmit on {port.Master.Name}");
        return Transmit(port.Master, frame, tag: null);
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_xmit_mode_l3 (l3 and l3s): lookup by destination address, a hit is
    // handed to that slave, a miss (and every packet of a VEPA port) is routed by ipvlan_process_outbound.
    Outcome XmitModeL3(Port port, Link slave, Frame frame)
    {
        var packet = frame.Packet;
        if (!port.IsVepa && Lookup(port, packet.Destination) is { } owner)
        {
            if (port.IsPrivate)
            {
                Say(slave.Ns, "ipvlan_xmit_mode_l3", $"ipvlan_addr_lookup({packet.Destination}) hits {owner.Name} in {owner.Ns}, but the port is private: dropped");
                return new Lost(Loss.Private, $"{port.Master.Name}'s port is private: the kernel drops traffic between its slaves.");
            }
            Say(slave.Ns, "ipvlan_xmit_mode_l3", $"ipvlan_addr_lookup({packet.Destination}) hits {owner.Name} in {owner.Ns}: ipvlan_rcv_frame, dev_forward_skb to it");
            return StackInput(owner, frame with { DestinationMac = owner.Mac });
        }
        if (port.IsVepa && Lookup(port, packet.Destination) is not null)
            VepaHairpin = true;
        Say(slave.Ns, "ipvlan_xmit_mode_l3", port.IsVepa
            ? $"vepa: no lookup, ipvlan_process_outbound routes it in {port.Master.Ns}"
            : $"ipvlan_addr_lookup({packet.Destination}) misses{MissNote(port, packet.Destination)}: ipvlan_process_outbound routes it in {port.Master.Ns}");
        return packet.IsIPv4 ? ProcessV4Outbound(port, packet) : ProcessV6Outbound(port, packet);
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_process_v4_outbound: ip_route_output_flow in the master's namespace
    // with flowi4_oif = the master (only routes through it match, ANYSRC keeps the pod's source); no match: the
    // kernel assumes the destination is on-link on the master (ip_route_output_key_hash_rcu). RTN_LOCAL and
    // RTN_UNICAST go on through ip_local_out (OUTPUT, POSTROUTING), anything else is dropped.
    Outcome ProcessV4Outbound(Port port, Packet packet)
    {
        var ns = port.Master.Ns;
        var fib = FibLookup(ns, packet.Destination, port.Master, strictOif: true);
        if (fib.Local is { } local)
        {
            Say(ns, "ipvlan_process_v4_outbound", $"{packet.Destination} is {ns}'s own on {local.Link.Name}: RTN_LOCAL, delivered to its stack");
            return new Arrived(ns, packet);
        }
        if (fib.Rejecting is { } rejecting)
            return Refused(ns, packet, rejecting);
        if (fib.Route is { } route)
        {
            Say(ns, "ipvlan_process_v4_outbound", $"flowi4_oif={port.Master.Name}: route {route}, ip_local_out");
            return Output(ns, port.Master, route.Gateway ?? packet.Destination, packet);
        }
        var elsewhere = FibLookup(ns, packet.Destination, oif: null);
        string note = elsewhere.Local is { } l ? $" ({packet.Destination} is local on {l.Link.Name}, which flowi4_oif={port.Master.Name} skips)"
            : elsewhere.Route is { Link: { } other } r && other != port.Master ? $" (route {r} is through another link)" : "";
        Say(ns, "ipvlan_process_v4_outbound", $"no route through {port.Master.Name}{note}: assumed on-link on {port.Master.Name}, ip_local_out");
        var outcome = Output(ns, port.Master, packet.Destination, packet);
        return outcome is Lost { Kind: Loss.NoNeighbour }
            ? new Lost(Loss.NoNeighbour, $"a pod's IPv4 leaves only through its master {port.Master.Name} (ipvlan_process_v4_outbound), and nobody answers ARP for {packet.Destination} there.")
            : outcome;
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_process_v6_outbound (ipvlan_route_v6_outbound): ip6_route_output in the
    // master's namespace; the pod's source is set, so flowi6_oif is only a preference (no RT6_LOOKUP_F_IFACE) and
    // the route may leave through any link. An error route drops it.
    Outcome ProcessV6Outbound(Port port, Packet packet)
    {
        var ns = port.Master.Ns;
        var fib = FibLookup(ns, packet.Destination, port.Master);
        if (fib.Local is { } local)
        {
            Say(ns, "ipvlan_process_v6_outbound", $"{packet.Destination} is {ns}'s own on {local.Link.Name}: delivered to its stack");
            return new Arrived(ns, packet);
        }
        if (fib.Route is not { } route)
            return Refused(ns, packet, fib.Rejecting);
        Say(ns, "ipvlan_process_v6_outbound", $"route {route}, ip6_local_out");
        return Output(ns, route.Link!, route.Gateway ?? packet.Destination, packet);
    }

    // net/core/dev.c __netif_receive_skb_core for a frame arriving from the wire: VLAN demux (vlan_do_receive),
    // then the rx_handler of an ipvlan master (ipvlan_handle_frame), else the stack.
    Outcome WireReceive(Link link, Frame frame, int? tag)
    {
        var arrived = Demux(link, tag);
        if (arrived is null)
        {
            Say(link.Ns, "vlan_do_receive", $"no VLAN {tag} on {link.Name}: dropped");
            return new Lost(Loss.NoVlan, $"{link.Ns} has no VLAN {tag} on {link.Name}.");
        }
        if (arrived.OwnPort is { } port)
            return HandleFrame(port, frame);
        return StackInput(arrived, frame);
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_handle_frame: the master's rx_handler, by the port's mode.
    Outcome HandleFrame(Port port, Frame frame)
    {
        switch (port.Mode)
        {
            case IpvlanMode.L2:
                // ipvlan_handle_mode_l2: a unicast frame is handled as in l3.
                return HandleModeL3(port, frame, "ipvlan_handle_mode_l2");
            case IpvlanMode.L3:
                return HandleModeL3(port, frame, "ipvlan_handle_mode_l3");
            default:
                Say(port.Master.Ns, "ipvlan_handle_frame", $"l3s: RX_HANDLER_PASS to {port.Master.Name}'s stack");
                return StackInput(port.Master, frame);
        }
    }

    // drivers/net/ipvlan/ipvlan_core.c ipvlan_handle_mode_l3: lookup by destination address; a hit becomes that
    // slave's packet (ipvlan_rcv_frame, RX_HANDLER_ANOTHER: the master's netfilter never sees it), a miss is the
    // master's (RX_HANDLER_PASS).
    Outcome HandleModeL3(Port port, Frame frame, string function)
    {
        var packet = frame.Packet;
        if (frame.DestinationMac is { } mac && mac != port.Master.Mac)
        {
            Say(port.Master.Ns, function, $"destination MAC {mac} is not {port.Master.Name}'s: PACKET_OTHERHOST, dropped");
            return new Lost(Loss.OtherHost, $"{packet.What} reaches {port.Master.Name} addressed to another MAC ({mac}).");
        }
        if (Lookup(port, packet.Destination) is { } owner)
        {
            Say(port.Master.Ns, function, $"ipvlan_addr_lookup({packet.Destination}) hits {owner.Name} in {owner.Ns}: ipvlan_rcv_frame");
            return StackInput(owner, frame);
        }
        Say(port.Master.Ns, function, $"ipvlan_addr_lookup({packet.Destination}) misses: RX_HANDLER_PASS to {port.Master.Name}'s stack");
        return StackInput(port.Master, frame);
    }

    // net/ipv4/ip_input.c ip_rcv_finish -> ip_route_input_noref, net/ipv6/ip6_input.c ip6_rcv_finish: conntrack
    // undoes our NAT for a reply (PREROUTING), an l3s master hands its slaves' packets over (ipvlan_l3_rcv), a local
    // destination is delivered (ip_local_deliver), anything else is forwarded when the namespace forwards.
    Outcome StackInput(Link link, Frame frame)
    {
        if (++_steps > Budget)
            return new Lost(Loss.Loop, $"{frame.Packet.What} loops.");
        var ns = link.Ns;
        var packet = frame.Packet;
        if (!link.Up)
            return new Lost(Loss.LinkDown, $"{link.Name} in {ns} is down.");
        if (frame.DestinationMac is { } mac && mac != link.Mac)
        {
            Say(ns, "eth_type_trans", $"destination MAC {mac} is not {link.Name}'s: PACKET_OTHERHOST, dropped");
            return new Lost(Loss.OtherHost, $"{packet.What} reaches {link.Name} in {ns} addressed to another MAC ({mac}).");
        }
        if (ns.IsNode && _natBindings.FirstOrDefault(b => b.Translated.Equals(packet.Destination) && packet.Source is { } s && b.Peer.Equals(s)) is { Original: not null } binding)
        {
            Say(ns, "nf_nat_ipv" + (packet.IsIPv4 ? "4" : "6") + "_in", $"PREROUTING, conntrack: reply of a masqueraded flow, destination {packet.Destination} -> {binding.Original}");
            packet = packet with { Destination = binding.Original };
        }
        if (link.OwnPort is { Mode: IpvlanMode.L3S } port && Lookup(port, packet.Destination) is { } owner)
        {
            // drivers/net/ipvlan/ipvlan_l3s.c ipvlan_l3_rcv routes it in the slave's namespace, ipvlan_nf_input
            // (LOCAL_IN of the master's namespace) makes it the slave's.
            Say(ns, "ipvlan_l3_rcv", $"l3s: {packet.Destination} is {owner.Name}'s in {owner.Ns}: routed there, ipvlan_nf_input hands it over");
            return Deliver(owner.Ns, owner, packet);
        }
        return Deliver(ns, link, packet);
    }

    Outcome Deliver(Ns ns, Link link, Packet packet)
    {
        if (ns.Local(packet.Destination) is { } local)
        {
            Say(ns, packet.IsIPv4 ? "ip_local_deliver" : "ip6_input", $"{packet.Destination} is local (on {local.Link.Name}): delivered");
            return new Arrived(ns, packet);
        }
        if (!ns.Forwarding(packet.Destination.AddressFamily))
        {
            string sysctl = packet.IsIPv4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding";
            Say(ns, packet.IsIPv4 ? "ip_route_input" : "ip6_route_input", $"{packet.Destination} is not {ns}'s and {sysctl}=0: dropped");
            return new Lost(Loss.ForwardingOff, $"{packet.What} to {packet.Destination} reaches {ns} (on {link.Name}), which does not forward ({sysctl}=0).",
                $"which does not forward ({sysctl}=0)");
        }
        var fib = FibLookup(ns, packet.Destination, oif: null);
        if (fib.Route is not { } route)
            return Refused(ns, packet, fib.Rejecting);
        Say(ns, packet.IsIPv4 ? "ip_forward" : "ip6_forward", $"forwarded by route {route}");
        return Output(ns, route.Link!, route.Gateway ?? packet.Destination, packet);
    }

    // A frame leaves through a device whose other end the snapshot does not hold (a physical NIC): what happens
    // out there the node cannot show. Addresses are unique, so a packet for an address of this node that leaves
    // through another NIC than the one that address lives behind is lost; through the same NIC only a router out
    // there could send it back.
    Outcome LeavesNode(Link link, Frame frame)
    {
        var packet = frame.Packet;
        Say(link.Ns, "dev_queue_xmit", $"{packet.What} leaves the node on {link.Name}");
        if (topology.Holder(packet.Destination) is { } holder)
        {
            var behind = holder.Link.Port?.Master ?? holder.Link;
            if (Descend(behind).Bottom != link)
                return new Lost(Loss.LeftNode, $"{packet.What} to {packet.Destination} leaves the node through {link.Name}, away from {behind.Name} where {packet.Destination} lives.");
            return new Unsure($"{packet.What} to {packet.Destination} leaves the node on {link.Name}: only a router out there sending it back to {behind.Name} would deliver it, and the model cannot see that.");
        }
        return new Unsure($"{packet.Destination} is beyond {link.Name}: the model cannot see whether it answers, or how the network out there routes the reply back to {packet.Source}.");
    }

    static string Family(Packet packet) => packet.IsIPv4 ? "IPv4" : "IPv6";
}
