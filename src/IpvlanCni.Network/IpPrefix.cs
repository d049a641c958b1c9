using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace IpvlanCni.Network;

/// <summary>An address with a prefix length, host bits kept: "10.1.1.5/24" as an interface address.</summary>
public readonly record struct IpPrefix
{
    public IpPrefix(IPAddress address, int prefixLength)
    {
        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefixLength < 0 || prefixLength > max)
            throw new ArgumentOutOfRangeException(nameof(prefixLength), $"prefix length {prefixLength} is outside 0..{max}");
        Address = address;
        PrefixLength = prefixLength;
    }

    public IPAddress Address { get; }
    public int PrefixLength { get; }
    public AddressFamily Family => Address.AddressFamily;
    public bool IsIPv4 => Address.AddressFamily == AddressFamily.InterNetwork;
    public int MaxPrefixLength => IsIPv4 ? 32 : 128;
    public bool IsHost => PrefixLength == MaxPrefixLength;

    /// <summary>The prefix with host bits cleared (the network).</summary>
    public IpPrefix Network => new(Mask(Address, PrefixLength), PrefixLength);

    /// <summary>A host route to one address: /32 or /128.</summary>
    public static IpPrefix Host(IPAddress address) =>
        new(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);

    public static IpPrefix Parse(string text) =>
        TryParse(text, out var prefix) ? prefix : throw new FormatException($"'{text}' is not an address with a prefix length (like 10.1.1.5/24)");

    /// <summary>"a.b.c.d/n" or "x::y/n" by Go's rules (<see cref="IpText"/>); a bare address is not accepted.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out IpPrefix prefix) => IpText.TryParsePrefix(text, out prefix);

    public bool Contains(IPAddress address) =>
        address.AddressFamily == Family && Mask(address, PrefixLength).Equals(Network.Address);

    public bool Equals(IpPrefix other) =>
        PrefixLength == other.PrefixLength && (Address?.Equals(other.Address) ?? other.Address is null);

    public override int GetHashCode() => HashCode.Combine(Address, PrefixLength);

    public override string ToString() => $"{Address}/{PrefixLength}";

    static IPAddress Mask(IPAddress address, int prefixLength)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int count);
        bytes = bytes[..count];
        for (int i = 0; i < bytes.Length; i++)
        {
            int bitsKept = Math.Clamp(prefixLength - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - bitsKept));
        }
        return new IPAddress(bytes);
    }
}
