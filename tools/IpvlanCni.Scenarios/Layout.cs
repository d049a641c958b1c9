using System.Net;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

public enum Family { IPv4, IPv6 }

/// <summary>
/// One ipvlan master of the lab and the business-network segment it sits on. Segment n (its VLAN id, 10 when
/// untagged) numbers everything: subnet s of the segment is 10.n.s.0/24 and fd00:0:n:s::/64; subnet 0 is the
/// business segment itself (node .1, peer .254), pods of l3 networks live in subnets 1 and 2 behind the node.
/// </summary>
/// <param name="Vlan">0: the untagged business NIC ens10 is the master; else the 802.1Q sub-interface ens10.&lt;Vlan&gt;.</param>
/// <param name="NodeOwnsMaster">
/// The node has the master, with an address on it (the "master IP" the underlay routes l3 pods through); false: the
/// plugin creates the VLAN on the first ADD and removes it with the last pod, and the node has no address there.
/// </param>
public sealed record Segment(IpvlanMode Mode, ushort Vlan, bool NodeOwnsMaster)
{
    int Number => Vlan == 0 ? 10 : Vlan;

    public string Master => Vlan == 0 ? Lab.BusinessNic : $"{Lab.BusinessNic}.{Vlan}";
    public string ModeName => Mode switch { IpvlanMode.L2 => "l2", IpvlanMode.L3 => "l3", _ => "l3s" };

    /// <summary>The node's address on the master, null when it has none.</summary>
    public IpPrefix? NodeAddress(Family family) => NodeOwnsMaster ? Address(family, 0, 1) : null;

    /// <summary>The business peer on this segment (outside the node).</summary>
    public IpPrefix PeerAddress(Family family) => Address(family, 0, 254);

    /// <summary>
    /// The pods' subnet of a network (0: the first, 1: a second one on the same master). l2 pods share the business
    /// segment with its peer; l3 pods live in subnets routed to the node.
    /// </summary>
    public IpPrefix PodSubnet(Family family, int network) => Address(family, Mode == IpvlanMode.L2 ? network : network + 1, 0);

    /// <summary>Every l3 pod subnet of this segment: what a peer routes to the node's master IP.</summary>
    public IpPrefix PodSupernet(Family family) =>
        family == Family.IPv4 ? IpPrefix.Parse($"10.{Number}.0.0/16") : IpPrefix.Parse($"fd00:0:{Number}::/48");

    /// <summary>Host <paramref name="host"/> of subnet <paramref name="subnet"/> (decimal in both families, for reading).</summary>
    public IpPrefix Address(Family family, int subnet, int host) => family == Family.IPv4
        ? IpPrefix.Parse($"10.{Number}.{subnet}.{host}/24")
        : IpPrefix.Parse($"fd00:0:{Number}:{subnet}::{host}/64");

    public static IPAddress RangeStart(IpPrefix subnet) => Offset(subnet, subnet.IsIPv4 ? 10 : 0x10);
    public static IPAddress RangeEnd(IpPrefix subnet) => Offset(subnet, subnet.IsIPv4 ? 99 : 0x99);

    static IPAddress Offset(IpPrefix subnet, int host)
    {
        var bytes = subnet.Network.Address.GetAddressBytes();
        bytes[^1] = (byte)host;
        return new IPAddress(bytes);
    }
}

/// <summary>Which node the lab builds: its masters, and where the node's own address and default route are.</summary>
/// <param name="DefaultRouteOnMaster">
/// The node's primary address (source of its default route) is its address on the first segment's master; false:
/// on the management NIC ens3.
/// </param>
public sealed record Layout(string Name, IReadOnlyList<Segment> Segments, bool DefaultRouteOnMaster)
{
    /// <summary>
    /// The design note's node: management NIC ens3 with the node's IP and default route, business NIC ens10 with
    /// l2 pods on VLAN 100 (created by the plugin) and l3 / l3s pods on VLANs 200 / 250 that the node has, with the
    /// master IPs the business peers route those pods through. A master runs one mode, hence one VLAN per mode.
    /// </summary>
    public static Layout DesignNote { get; } = new("design note",
        [new(IpvlanMode.L2, 100, NodeOwnsMaster: false), new(IpvlanMode.L3, 200, NodeOwnsMaster: true), new(IpvlanMode.L3S, 250, NodeOwnsMaster: true)],
        DefaultRouteOnMaster: false);

    /// <summary>The node's IP and default route on the (untagged) master itself, pods in one mode.</summary>
    public static Layout NodeAddressOnMaster(IpvlanMode mode) =>
        new("node IP on the master", [new(mode, 0, NodeOwnsMaster: true)], DefaultRouteOnMaster: true);
}
