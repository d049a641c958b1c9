using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace IpvlanCni.Network;

/// <summary>
/// The one parser of address text, with Go's rules (net.ParseIP / net.ParseCIDR, which the reference plugins use):
/// a dotted quad of four decimal parts without leading zeros ("010.1.1.1" is an error, not 8.1.1.1 as .NET's
/// IPAddress.TryParse reads it), IPv6 without a zone, an IPv4-mapped IPv6 address read as IPv4.
/// </summary>
public static class IpText
{
    public static bool TryParseAddress([NotNullWhen(true)] string? text, [NotNullWhen(true)] out IPAddress? address) =>
        TryParseAddress(text.AsSpan(), out address) && text is not null;

    public static bool TryParseAddress(ReadOnlySpan<char> text, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        if (text.IsEmpty || text.Contains('%') || text.Contains('/'))
            return false;
        if (!text.Contains(':'))
        {
            Span<byte> bytes = stackalloc byte[4];
            int part = 0;
            foreach (var range in text.Split('.'))
            {
                var digits = text[range];
                if (part == 4 || digits.Length is 0 or > 3 || digits.ContainsAnyExceptInRange('0', '9') || (digits.Length > 1 && digits[0] == '0'))
                    return false;
                int value = int.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
                if (value > 255)
                    return false;
                bytes[part++] = (byte)value;
            }
            if (part != 4)
                return false;
            address = new IPAddress(bytes);
            return true;
        }
        // The dotted tail of "::ffff:1.2.3.4" follows the same rule.
        int lastColon = text.LastIndexOf(':');
        if (text[(lastColon + 1)..].Contains('.') && !TryParseAddress(text[(lastColon + 1)..].ToString(), out _))
            return false;
        if (!IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6 || parsed.ScopeId != 0)
            return false;
        address = parsed.IsIPv4MappedToIPv6 ? parsed.MapToIPv4() : parsed;
        return true;
    }

    /// <summary>"address/length", the host bits kept (as CNI's types.ParseCIDR keeps them).</summary>
    public static bool TryParsePrefix([NotNullWhen(true)] string? text, out IpPrefix prefix)
    {
        prefix = default;
        int slash = text?.IndexOf('/') ?? -1;
        if (text is null || slash <= 0)
            return false;
        var lengthText = text.AsSpan(slash + 1);
        if (lengthText.Length is 0 or > 3 || lengthText.ContainsAnyExceptInRange('0', '9'))
            return false;
        int length = int.Parse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture);
        var addressText = text.AsSpan(0, slash);
        if (!TryParseAddress(addressText, out var address))
            return false;
        // "::ffff:10.0.0.0/120" names an IPv6 prefix whose address Go would shorten to IPv4: a family mismatch.
        if (address.AddressFamily == AddressFamily.InterNetwork && addressText.Contains(':'))
            return false;
        if (length > (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
            return false;
        prefix = new IpPrefix(address, length);
        return true;
    }
}
