namespace IpvlanCni.Network;

/// <summary>rtm_scope / ifa_scope values.</summary>
public enum RouteScope : byte { Universe = 0, Site = 200, Link = 253, Host = 254, Nowhere = 255 }

/// <summary>IFA_F_* bits that matter to us.</summary>
[Flags]
public enum AddressFlags : uint { None = 0, Secondary = 0x01, NoDad = 0x02, Optimistic = 0x04, DadFailed = 0x08, HomeAddress = 0x10, Deprecated = 0x20, Tentative = 0x40, Permanent = 0x80 }

public sealed record AddressInfo(int LinkIndex, IpPrefix Prefix)
{
    public RouteScope Scope { get; init; } = RouteScope.Universe;
    public AddressFlags Flags { get; init; }
}
