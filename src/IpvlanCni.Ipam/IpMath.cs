using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>Address arithmetic on UInt128 (IPv4 uses the low 32 bits) and Go's net.IP text forms, which name store files.</summary>
public static class IpMath
{
    public static int Bits(AddressFamily family) => family == AddressFamily.InterNetwork ? 32 : 128;

    public static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int count);
        UInt128 n = 0;
        for (int i = 0; i < count; i++)
            n = (n << 8) | bytes[i];
        return n;
    }

    public static IPAddress FromNumber(UInt128 n, AddressFamily family)
    {
        int count = family == AddressFamily.InterNetwork ? 4 : 16;
        Span<byte> bytes = stackalloc byte[count];
        for (int i = count - 1; i >= 0; i--, n >>= 8)
            bytes[i] = (byte)n;
        return new IPAddress(bytes);
    }

    static UInt128 Max(AddressFamily family) => family == AddressFamily.InterNetwork ? uint.MaxValue : UInt128.MaxValue;

    /// <summary>The next address, wrapping at the end of the family like Go's ip.NextIP.</summary>
    public static IPAddress Next(IPAddress a)
    {
        var n = ToNumber(a);
        return FromNumber(n == Max(a.AddressFamily) ? 0 : n + 1, a.AddressFamily);
    }

    public static IPAddress Previous(IPAddress a)
    {
        var n = ToNumber(a);
        return FromNumber(n == 0 ? Max(a.AddressFamily) : n - 1, a.AddressFamily);
    }

    public static int Compare(IPAddress a, IPAddress b) =>
        a.AddressFamily != b.AddressFamily ? a.AddressFamily.CompareTo(b.AddressFamily) : ToNumber(a).CompareTo(ToNumber(b));

    /// <summary>The all-ones host part: the IPv4 broadcast, the last IPv6 address.</summary>
    public static IPAddress LastAddress(IpPrefix prefix)
    {
        int bits = Bits(prefix.Family);
        UInt128 hostMask = prefix.PrefixLength == bits ? 0 : (Max(prefix.Family) >> prefix.PrefixLength);
        return FromNumber(ToNumber(prefix.Network.Address) | hostMask, prefix.Family);
    }

    /// <summary>IPv4-mapped IPv6 addresses are IPv4, as Go's To4() canonicalization treats them.</summary>
    public static IPAddress Canonical(IPAddress a) => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;

    /// <summary>Go's net.IP.String(): dotted quad, or RFC 5952 (lowercase, the first longest run of 2+ zero groups as "::").</summary>
    public static string Format(IPAddress address)
    {
        address = Canonical(address);
        if (address.AddressFamily == AddressFamily.InterNetwork)
            return address.ToString();
        Span<byte> p = stackalloc byte[16];
        address.TryWriteBytes(p, out _);
        int e0 = -1, e1 = -1;
        for (int i = 0; i < 16; i += 2)
        {
            int j = i;
            while (j < 16 && p[j] == 0 && p[j + 1] == 0)
                j += 2;
            if (j > i && j - i > e1 - e0)
            {
                e0 = i;
                e1 = j;
                i = j;
            }
        }
        if (e1 - e0 <= 2)
            e0 = e1 = -1;
        var sb = new StringBuilder(39);
        for (int i = 0; i < 16; i += 2)
        {
            if (i == e0)
            {
                sb.Append("::");
                i = e1;
                if (i >= 16)
                    break;
            }
            else if (i > 0)
                sb.Append(':');
            sb.Append(((p[i] << 8) | p[i + 1]).ToString("x", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>Go's net.ParseIP (the one parser, <see cref="IpText"/>).</summary>
    public static bool TryParse(string? text, out IPAddress address)
    {
        bool parsed = IpText.TryParseAddress(text, out var value);
        address = value ?? IPAddress.None;
        return parsed;
    }

    /// <summary>Go's net.ParseCIDR, keeping the host bits of the address (as CNI's types.ParseCIDR does).</summary>
    public static bool TryParseCidr(string? text, out IpPrefix prefix) => IpText.TryParsePrefix(text, out prefix);

    public static string Format(IpPrefix prefix) => $"{Format(prefix.Address)}/{prefix.PrefixLength}";
}
