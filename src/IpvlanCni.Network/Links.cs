using System.Net.NetworkInformation;

namespace IpvlanCni.Network;

/// <summary>Kernel values of IFLA_IPVLAN_MODE (u16): all slaves of a master share one.</summary>
public enum IpvlanMode : ushort { L2 = 0, L3 = 1, L3S = 2 }

/// <summary>Kernel values of IFLA_IPVLAN_FLAGS (u16).</summary>
public enum IpvlanFlag : ushort { Bridge = 0, Private = 1, Vepa = 2 }

/// <summary>IFLA_OPERSTATE (RFC 2863).</summary>
public enum OperationalState : byte { Unknown = 0, NotPresent = 1, Down = 2, LowerLayerDown = 3, Testing = 4, Dormant = 5, Up = 6 }

/// <summary>What the kernel reports about one link.</summary>
public sealed record LinkInfo
{
    public required int Index { get; init; }
    public required string Name { get; init; }
    /// <summary>IFLA_INFO_KIND ("ipvlan", "dummy", "veth", "vlan", "macvlan"), null for a plain device.</summary>
    public string? Kind { get; init; }
    /// <summary>IFLA_LINK: the master of an ipvlan/macvlan/vlan link, 0 when none.</summary>
    public int ParentIndex { get; init; }
    /// <summary>IFLA_LINK_NETNSID: the parent (or veth peer) lives in another namespace, this id as seen from here; null: this one.</summary>
    public int? ParentNamespaceId { get; init; }
    public PhysicalAddress MacAddress { get; init; } = PhysicalAddress.None;
    public int Mtu { get; init; }
    /// <summary>IFF_UP is set (administratively up).</summary>
    public bool IsUp { get; init; }
    public bool NoArp { get; init; }
    public OperationalState OperationalState { get; init; }
    public IpvlanMode? IpvlanMode { get; init; }
    public IpvlanFlag? IpvlanFlag { get; init; }
    public ushort? VlanId { get; init; }
    /// <summary>IFLA_IFALIAS, the free-text label a link may carry; null when none.</summary>
    public string? Alias { get; init; }
}

/// <summary>A link to create. Links are created with NLM_F_CREATE|NLM_F_EXCL.</summary>
public abstract record LinkSpec(string Name)
{
    /// <summary>0 = the kernel's default.</summary>
    public int Mtu { get; init; }
    /// <summary>Create it directly in this namespace (IFLA_NET_NS_FD); null = the client's namespace.</summary>
    public NetNamespace? Namespace { get; init; }
}

public sealed record DummyLinkSpec(string Name) : LinkSpec(Name);
public sealed record VethLinkSpec(string Name, string PeerName) : LinkSpec(Name)
{
    public NetNamespace? PeerNamespace { get; init; }
}
public sealed record VlanLinkSpec(string Name, int ParentIndex, ushort VlanId) : LinkSpec(Name);
public sealed record IpvlanLinkSpec(string Name, int ParentIndex, IpvlanMode Mode, IpvlanFlag Flag = IpvlanFlag.Bridge) : LinkSpec(Name);
/// <summary>A Linux bridge (STP off, so its ports forward at once): the shared wire of simulated nodes in tests.</summary>
public sealed record BridgeLinkSpec(string Name) : LinkSpec(Name);
/// <summary>macvlan in bridge mode: only for showing that a master cannot carry both kinds.</summary>
public sealed record MacvlanLinkSpec(string Name, int ParentIndex) : LinkSpec(Name);

/// <summary>Changes to an existing link, sent as one RTM_NEWLINK (null = leave as is).</summary>
public sealed record LinkChange
{
    public string? Name { get; init; }
    public bool? Up { get; init; }
    public int? Mtu { get; init; }
    public bool? NoArp { get; init; }
    /// <summary>IPv4 arp_notify (net.ipv4.conf.&lt;name&gt;.arp_notify): a gratuitous ARP when the link comes up.</summary>
    public bool? ArpNotify { get; init; }
    /// <summary>IFLA_IFALIAS (the kernel ignores it in a create, so it is a change).</summary>
    public string? Alias { get; init; }
    /// <summary>Move the link into this namespace.</summary>
    public NetNamespace? Namespace { get; init; }
    /// <summary>IFLA_MASTER: enslave the link to this bridge (ifindex in the same namespace).</summary>
    public int? MasterIndex { get; init; }
}
