using System.Net;

namespace IpvlanCni.Network;

/// <summary>One path of a multipath (ECMP) route.</summary>
public sealed record NextHop(IPAddress? Gateway, int LinkIndex)
{
    public bool OnLink { get; init; }
    /// <summary>Kernel weight is rtnh_hops + 1; 1 = default.</summary>
    public int Weight { get; init; } = 1;
}

public sealed record RouteInfo(IpPrefix Destination)
{
    public const int MainTable = 254;
    public IPAddress? Gateway { get; init; }
    /// <summary>RTA_OIF; 0 when none (multipath or unreachable).</summary>
    public int LinkIndex { get; init; }
    public RouteScope Scope { get; init; } = RouteScope.Universe;
    public int Table { get; init; } = MainTable;
    /// <summary>RTNH_F_ONLINK: the gateway is reachable on the link without a covering route.</summary>
    public bool OnLink { get; init; }
    public IPAddress? PreferredSource { get; init; }
    /// <summary>RTA_PRIORITY; null = kernel default.</summary>
    public uint? Metric { get; init; }
    /// <summary>RTAX_MTU in RTA_METRICS; null = none.</summary>
    public int? Mtu { get; init; }
    /// <summary>RTAX_ADVMSS in RTA_METRICS; null = none.</summary>
    public int? AdvertisedMss { get; init; }
    /// <summary>rtm_protocol; 4 = RTPROT_STATIC, what "ip route add" uses.</summary>
    public byte Protocol { get; init; } = 4;
    /// <summary>rtm_type; 1 = RTN_UNICAST.</summary>
    public byte Type { get; init; } = 1;
    /// <summary>RTA_MULTIPATH; when non-empty Gateway and LinkIndex are unused.</summary>
    public IReadOnlyList<NextHop> NextHops { get; init; } = [];
}
