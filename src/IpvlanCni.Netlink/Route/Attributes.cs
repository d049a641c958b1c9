namespace IpvlanCni.Netlink.Route;

// Attribute ids, one enum per attribute family so ids of two families cannot be mixed. The kernel name is in the
// comment next to each value (linux/if_link.h, if_addr.h, rtnetlink.h, neighbour.h, veth.h).

/// <summary>IFLA_*: attributes after an ifinfomsg.</summary>
public enum LinkAttribute : ushort
{
    Address = 1,         // IFLA_ADDRESS
    Broadcast = 2,       // IFLA_BROADCAST
    Name = 3,            // IFLA_IFNAME
    Mtu = 4,             // IFLA_MTU
    Link = 5,            // IFLA_LINK
    Master = 10,         // IFLA_MASTER
    TxQueueLength = 13,  // IFLA_TXQLEN
    OperationalState = 16, // IFLA_OPERSTATE
    LinkMode = 17,       // IFLA_LINKMODE
    LinkInfo = 18,       // IFLA_LINKINFO
    NetNamespacePid = 19, // IFLA_NET_NS_PID
    Alias = 20,          // IFLA_IFALIAS
    AddressFamilySpec = 26, // IFLA_AF_SPEC
    NetNamespaceFd = 28, // IFLA_NET_NS_FD
    ExtendedMask = 29,   // IFLA_EXT_MASK
    LinkNetNamespaceId = 37, // IFLA_LINK_NETNSID
    MinMtu = 50,         // IFLA_MIN_MTU
    MaxMtu = 51,         // IFLA_MAX_MTU
}

/// <summary>Inside IFLA_AF_SPEC: one nest per address family, the family number as its type.</summary>
public enum AddressFamilySpecAttribute : ushort
{
    Inet = 2, // AF_INET
}

/// <summary>IFLA_INET_*: inside IFLA_AF_SPEC's AF_INET nest.</summary>
public enum InetSpecAttribute : ushort
{
    Config = 1, // IFLA_INET_CONF
}

/// <summary>IPV4_DEVCONF_* (linux/ip.h): inside IFLA_INET_CONF, u32 values.</summary>
public enum Ipv4DeviceConfig : ushort
{
    ArpNotify = 22, // IPV4_DEVCONF_ARP_NOTIFY
}

/// <summary>IFLA_INFO_*: inside IFLA_LINKINFO.</summary>
public enum LinkInfoAttribute : ushort
{
    Kind = 1,      // IFLA_INFO_KIND
    Data = 2,      // IFLA_INFO_DATA
    SlaveKind = 4, // IFLA_INFO_SLAVE_KIND
    SlaveData = 5, // IFLA_INFO_SLAVE_DATA
}

/// <summary>IFLA_IPVLAN_*: inside IFLA_INFO_DATA of kind "ipvlan".</summary>
public enum IpvlanAttribute : ushort
{
    Mode = 1,  // IFLA_IPVLAN_MODE (u16)
    Flags = 2, // IFLA_IPVLAN_FLAGS (u16)
}

/// <summary>IFLA_VLAN_*: inside IFLA_INFO_DATA of kind "vlan".</summary>
public enum VlanAttribute : ushort
{
    Id = 1,       // IFLA_VLAN_ID (u16)
    Flags = 2,    // IFLA_VLAN_FLAGS
    Protocol = 5, // IFLA_VLAN_PROTOCOL (be16)
}

/// <summary>IFLA_MACVLAN_*: inside IFLA_INFO_DATA of kind "macvlan".</summary>
public enum MacvlanAttribute : ushort
{
    Mode = 1, // IFLA_MACVLAN_MODE (u32; MACVLAN_MODE_BRIDGE = 4)
}

/// <summary>VETH_INFO_*: inside IFLA_INFO_DATA of kind "veth".</summary>
public enum VethAttribute : ushort
{
    Peer = 1, // VETH_INFO_PEER: an ifinfomsg followed by IFLA_* attributes of the peer
}

/// <summary>IFA_*: attributes after an ifaddrmsg.</summary>
public enum AddressAttribute : ushort
{
    Address = 1,   // IFA_ADDRESS (the peer on point-to-point links, else = IFA_LOCAL)
    Local = 2,     // IFA_LOCAL
    Label = 3,     // IFA_LABEL
    Broadcast = 4, // IFA_BROADCAST
    Anycast = 5,   // IFA_ANYCAST
    CacheInfo = 6, // IFA_CACHEINFO
    Multicast = 7, // IFA_MULTICAST
    Flags = 8,     // IFA_FLAGS (u32, supersedes ifa_flags)
}

/// <summary>RTA_*: attributes after an rtmsg.</summary>
public enum RouteAttribute : ushort
{
    Destination = 1,     // RTA_DST
    Source = 2,          // RTA_SRC
    InputInterface = 3,  // RTA_IIF
    OutputInterface = 4, // RTA_OIF
    Gateway = 5,         // RTA_GATEWAY
    Priority = 6,        // RTA_PRIORITY
    PreferredSource = 7, // RTA_PREFSRC
    Metrics = 8,         // RTA_METRICS (nested RTAX_*)
    Multipath = 9,       // RTA_MULTIPATH (rtnexthop list)
    CacheInfo = 12,      // RTA_CACHEINFO
    Table = 15,          // RTA_TABLE (u32)
    Mark = 16,           // RTA_MARK
    Via = 18,            // RTA_VIA
    Preference = 20,     // RTA_PREF
    Expires = 23,        // RTA_EXPIRES
    Uid = 25,            // RTA_UID
}

/// <summary>RTAX_*: inside RTA_METRICS (each a u32).</summary>
public enum RouteMetricAttribute : ushort
{
    Lock = 1,     // RTAX_LOCK
    Mtu = 2,      // RTAX_MTU
    Window = 3,   // RTAX_WINDOW
    Rtt = 4,      // RTAX_RTT
    AdvertisedMss = 8, // RTAX_ADVMSS
    HopLimit = 10, // RTAX_HOPLIMIT
}

/// <summary>NDA_*: attributes after an ndmsg.</summary>
public enum NeighbourAttribute : ushort
{
    Destination = 1,      // NDA_DST
    LinkLayerAddress = 2, // NDA_LLADDR
    CacheInfo = 3,        // NDA_CACHEINFO
    Probes = 4,           // NDA_PROBES
    Vlan = 5,             // NDA_VLAN
    Port = 6,             // NDA_PORT
    Vni = 7,              // NDA_VNI
    InterfaceIndex = 8,   // NDA_IFINDEX
    Master = 9,           // NDA_MASTER
}

/// <summary>NETCONFA_* (linux/netconf.h): attributes after a netconfmsg, each an s32.</summary>
public enum NetconfAttribute : ushort
{
    InterfaceIndex = 1, // NETCONFA_IFINDEX (NETCONFA_IFINDEX_ALL -1: the namespace's "all" settings)
    Forwarding = 2,     // NETCONFA_FORWARDING
}

/// <summary>IFF_* bits of ifi_flags (linux/if.h) that we read or change.</summary>
[Flags]
public enum InterfaceFlags : uint
{
    None = 0,
    Up = 0x1,          // IFF_UP
    Broadcast = 0x2,   // IFF_BROADCAST
    Loopback = 0x8,    // IFF_LOOPBACK
    PointToPoint = 0x10, // IFF_POINTOPOINT
    Running = 0x40,    // IFF_RUNNING
    NoArp = 0x80,      // IFF_NOARP
    Promiscuous = 0x100, // IFF_PROMISC
    Multicast = 0x1000, // IFF_MULTICAST
    LowerUp = 0x10000, // IFF_LOWER_UP
}

/// <summary>RTNH_F_* bits (rtm_flags and rtnh_flags).</summary>
[Flags]
public enum NextHopFlags : byte
{
    None = 0,
    Dead = 1,     // RTNH_F_DEAD
    Pervasive = 2, // RTNH_F_PERVASIVE
    OnLink = 4,   // RTNH_F_ONLINK
    Offload = 8,  // RTNH_F_OFFLOAD
    LinkDown = 16, // RTNH_F_LINKDOWN
}
