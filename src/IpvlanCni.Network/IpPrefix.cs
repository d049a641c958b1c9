using System.Net;
using System.Net.Sockets;

namespace IpvlanCni.Network;

/// <summary>An address with a prefix length, host bits kept: "10.1.1.5/24" as an interface address.</summary>
public readonly record struct IpPrefix(IPAddress Address, int PrefixLength)
{
    public AddressFamily Family => Address.AddressFamily;
    public bool IsIPv4 => Address.AddressFamily == AddressFamily.InterNetwork;
    public int MaxPrefixLength => IsIPv4 ? 32 : 128;

    /// <summary>The prefix with host bits cleared (the network).</summary>
    public IpPrefix Network => throw new NotImplementedException();

    /// <summary>A host route to one address: /32 or /128.</summary>
    public static IpPrefix Host(IPAddress address) => throw new NotImplementedException();

    public static IpPrefix Parse(string text) => throw new NotImplementedException();
    public static bool TryParse(string? text, out IpPrefix prefix) => throw new NotImplementedException();
    public bool Contains(IPAddress address) => throw new NotImplementedException();
    public override string ToString() => $"{Address}/{PrefixLength}";
}
