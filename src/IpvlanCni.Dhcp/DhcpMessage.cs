using System.Buffers.Binary;
using System.Net;
using System.Text;
using IpvlanCni.Network;

namespace IpvlanCni.Dhcp;

/// <summary>Option 53 (RFC 2132 9.6).</summary>
public enum DhcpMessageType : byte
{
    Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8,
}

/// <summary>Option codes we send or read (RFC 2132, RFC 3442).</summary>
public static class DhcpOption
{
    public const byte Pad = 0;
    public const byte SubnetMask = 1;
    public const byte Router = 3;
    public const byte DomainNameServer = 6;
    public const byte HostName = 12;
    public const byte DomainName = 15;
    public const byte RequestedAddress = 50;
    public const byte LeaseTime = 51;
    public const byte Overload = 52;
    public const byte MessageType = 53;
    public const byte ServerIdentifier = 54;
    public const byte ParameterRequestList = 55;
    public const byte Message = 56;
    public const byte MaxMessageSize = 57;
    public const byte RenewalTime = 58;
    public const byte RebindingTime = 59;
    public const byte ClientIdentifier = 61;
    public const byte DomainSearch = 119;
    public const byte ClasslessStaticRoute = 121;
    public const byte End = 255;
}

/// <summary>A route from option 121: destination prefix and router (0.0.0.0: on-link).</summary>
public sealed record DhcpRoute(IpPrefix Destination, IPAddress Router);

/// <summary>A malformed DHCP packet: the only exception <see cref="DhcpMessage.Decode"/> throws.</summary>
public sealed class DhcpFormatException(string message) : Exception(message);

/// <summary>
/// One BOOTP/DHCP message (RFC 2131 section 2) with the options we use as typed fields. The codec is pure:
/// <see cref="Encode"/> and <see cref="Decode"/> are each other's inverse for the fields modelled here.
/// </summary>
public sealed record DhcpMessage
{
    public const int ServerPort = 67;
    public const int ClientPort = 68;
    const int HeaderLength = 236;
    const uint MagicCookie = 0x63825363;
    const ushort BroadcastFlag = 0x8000;
    /// <summary>BOOTP's minimum message (RFC 1542 2.1): some relays and servers drop shorter ones.</summary>
    const int MinimumLength = 300;

    /// <summary>1 BOOTREQUEST, 2 BOOTREPLY.</summary>
    public byte Op { get; init; } = 1;
    public uint TransactionId { get; init; }
    public ushort Seconds { get; init; }
    /// <summary>Asks the server to broadcast its reply: a slave without an address receives nothing unicast.</summary>
    public bool Broadcast { get; init; }
    public IPAddress ClientAddress { get; init; } = IPAddress.Any;
    public IPAddress YourAddress { get; init; } = IPAddress.Any;
    public IPAddress ServerAddress { get; init; } = IPAddress.Any;
    public IPAddress RelayAddress { get; init; } = IPAddress.Any;
    public byte[] ClientHardwareAddress { get; init; } = new byte[6];

    public required DhcpMessageType Type { get; init; }
    public byte[]? ClientId { get; init; }
    public IPAddress? ServerId { get; init; }
    public IPAddress? RequestedAddress { get; init; }
    public uint? LeaseSeconds { get; init; }
    public uint? RenewalSeconds { get; init; }
    public uint? RebindingSeconds { get; init; }
    public IPAddress? SubnetMask { get; init; }
    public IReadOnlyList<IPAddress> Routers { get; init; } = [];
    public IReadOnlyList<IPAddress> DnsServers { get; init; } = [];
    public string? DomainName { get; init; }
    public IReadOnlyList<DhcpRoute> ClasslessRoutes { get; init; } = [];
    public byte[]? ParameterRequestList { get; init; }
    public ushort? MaxMessageSize { get; init; }
    public string? HostName { get; init; }
    /// <summary>Option 56: the server's reason for a NAK.</summary>
    public string? Message { get; init; }

    public byte[] Encode()
    {
        var options = new List<byte>(64);
        void Put(byte code, ReadOnlySpan<byte> value)
        {
            // Values over 255 bytes go in consecutive instances of the option (RFC 3396).
            do
            {
                int n = Math.Min(255, value.Length);
                options.Add(code);
                options.Add((byte)n);
                options.AddRange(value[..n]);
                value = value[n..];
            }
            while (value.Length > 0);
        }
        void PutAddresses(byte code, IReadOnlyList<IPAddress> addresses)
        {
            if (addresses.Count > 0)
                Put(code, addresses.SelectMany(a => a.GetAddressBytes()).ToArray());
        }
        void PutU32(byte code, uint? value)
        {
            if (value is { } v)
            {
                Span<byte> b = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(b, v);
                Put(code, b);
            }
        }

        Put(DhcpOption.MessageType, [(byte)Type]);
        if (ClientId is { } clientId)
            Put(DhcpOption.ClientIdentifier, clientId);
        if (RequestedAddress is { } requested)
            Put(DhcpOption.RequestedAddress, requested.GetAddressBytes());
        if (ServerId is { } serverId)
            Put(DhcpOption.ServerIdentifier, serverId.GetAddressBytes());
        PutU32(DhcpOption.LeaseTime, LeaseSeconds);
        PutU32(DhcpOption.RenewalTime, RenewalSeconds);
        PutU32(DhcpOption.RebindingTime, RebindingSeconds);
        if (SubnetMask is { } mask)
            Put(DhcpOption.SubnetMask, mask.GetAddressBytes());
        PutAddresses(DhcpOption.Router, Routers);
        PutAddresses(DhcpOption.DomainNameServer, DnsServers);
        if (DomainName is { } domain)
            Put(DhcpOption.DomainName, Encoding.ASCII.GetBytes(domain));
        if (ClasslessRoutes.Count > 0)
            Put(DhcpOption.ClasslessStaticRoute, EncodeClasslessRoutes(ClasslessRoutes));
        if (HostName is { } host)
            Put(DhcpOption.HostName, Encoding.ASCII.GetBytes(host));
        if (Message is { } message)
            Put(DhcpOption.Message, Encoding.ASCII.GetBytes(message));
        if (MaxMessageSize is { } max)
            Put(DhcpOption.MaxMessageSize, [(byte)(max >> 8), (byte)max]);
        if (ParameterRequestList is { } prl)
            Put(DhcpOption.ParameterRequestList, prl);
        options.Add(DhcpOption.End);

        var packet = new byte[Math.Max(MinimumLength, HeaderLength + 4 + options.Count)];
        var span = packet.AsSpan();
        span[0] = Op;
        span[1] = 1; // htype: Ethernet
        span[2] = (byte)ClientHardwareAddress.Length;
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], TransactionId);
        BinaryPrimitives.WriteUInt16BigEndian(span[8..], Seconds);
        BinaryPrimitives.WriteUInt16BigEndian(span[10..], Broadcast ? BroadcastFlag : (ushort)0);
        ClientAddress.GetAddressBytes().CopyTo(span[12..]);
        YourAddress.GetAddressBytes().CopyTo(span[16..]);
        ServerAddress.GetAddressBytes().CopyTo(span[20..]);
        RelayAddress.GetAddressBytes().CopyTo(span[24..]);
        ClientHardwareAddress.CopyTo(span[28..]);
        BinaryPrimitives.WriteUInt32BigEndian(span[HeaderLength..], MagicCookie);
        options.CopyTo(packet, HeaderLength + 4);
        return packet;
    }

    /// <summary>Parses a packet from the network: anything malformed is a <see cref="DhcpFormatException"/>.</summary>
    public static DhcpMessage Decode(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < HeaderLength + 4)
            throw new DhcpFormatException($"{packet.Length} bytes is shorter than a DHCP header");
        if (BinaryPrimitives.ReadUInt32BigEndian(packet[HeaderLength..]) != MagicCookie)
            throw new DhcpFormatException("no DHCP magic cookie");
        int hlen = packet[2];
        if (hlen > 16)
            throw new DhcpFormatException($"hardware address length {hlen} is over 16");

        // Concatenate repeated options (RFC 3396) as we go.
        var values = new Dictionary<byte, List<byte>>();
        var rest = packet[(HeaderLength + 4)..];
        while (rest.Length > 0)
        {
            byte code = rest[0];
            if (code == DhcpOption.End)
                break;
            if (code == DhcpOption.Pad)
            {
                rest = rest[1..];
                continue;
            }
            if (rest.Length < 2 || rest.Length < 2 + rest[1])
                throw new DhcpFormatException($"option {code} runs past the end of the packet");
            var value = rest.Slice(2, rest[1]);
            if (!values.TryGetValue(code, out var list))
                values[code] = list = [];
            list.AddRange(value);
            rest = rest[(2 + value.Length)..];
        }
        if (values.ContainsKey(DhcpOption.Overload))
            throw new DhcpFormatException("option overload (52) is not supported");

        byte[]? Get(byte code) => values.TryGetValue(code, out var v) ? v.ToArray() : null;
        IPAddress? Address(byte code)
        {
            var v = Get(code);
            if (v is null)
                return null;
            return v.Length == 4 ? new IPAddress(v) : throw new DhcpFormatException($"option {code}: {v.Length} bytes, not an IPv4 address");
        }
        IReadOnlyList<IPAddress> Addresses(byte code)
        {
            var v = Get(code);
            if (v is null)
                return [];
            if (v.Length == 0 || v.Length % 4 != 0)
                throw new DhcpFormatException($"option {code}: {v.Length} bytes, not a list of IPv4 addresses");
            return Enumerable.Range(0, v.Length / 4).Select(i => new IPAddress(v.AsSpan(4 * i, 4))).ToList();
        }
        uint? U32(byte code)
        {
            var v = Get(code);
            if (v is null)
                return null;
            return v.Length == 4 ? BinaryPrimitives.ReadUInt32BigEndian(v) : throw new DhcpFormatException($"option {code}: {v.Length} bytes, not 4");
        }
        string? Text(byte code) => Get(code) is { } v ? Encoding.ASCII.GetString(v).TrimEnd('\0') : null;

        var type = Get(DhcpOption.MessageType) is [var t] && t is >= 1 and <= 8
            ? (DhcpMessageType)t
            : throw new DhcpFormatException("option 53 (message type) missing or invalid");
        return new DhcpMessage
        {
            Op = packet[0],
            TransactionId = BinaryPrimitives.ReadUInt32BigEndian(packet[4..]),
            Seconds = BinaryPrimitives.ReadUInt16BigEndian(packet[8..]),
            Broadcast = (BinaryPrimitives.ReadUInt16BigEndian(packet[10..]) & BroadcastFlag) != 0,
            ClientAddress = new IPAddress(packet.Slice(12, 4)),
            YourAddress = new IPAddress(packet.Slice(16, 4)),
            ServerAddress = new IPAddress(packet.Slice(20, 4)),
            RelayAddress = new IPAddress(packet.Slice(24, 4)),
            ClientHardwareAddress = packet.Slice(28, hlen).ToArray(),
            Type = type,
            ClientId = Get(DhcpOption.ClientIdentifier),
            ServerId = Address(DhcpOption.ServerIdentifier),
            RequestedAddress = Address(DhcpOption.RequestedAddress),
            LeaseSeconds = U32(DhcpOption.LeaseTime),
            RenewalSeconds = U32(DhcpOption.RenewalTime),
            RebindingSeconds = U32(DhcpOption.RebindingTime),
            SubnetMask = Address(DhcpOption.SubnetMask),
            Routers = Addresses(DhcpOption.Router),
            DnsServers = Addresses(DhcpOption.DomainNameServer),
            DomainName = Text(DhcpOption.DomainName),
            ClasslessRoutes = Get(DhcpOption.ClasslessStaticRoute) is { } routes ? DecodeClasslessRoutes(routes) : [],
            ParameterRequestList = Get(DhcpOption.ParameterRequestList),
            MaxMessageSize = Get(DhcpOption.MaxMessageSize) is [var hi, var lo] ? (ushort)(hi << 8 | lo) : null,
            HostName = Text(DhcpOption.HostName),
            Message = Text(DhcpOption.Message),
        };
    }

    /// <summary>RFC 3442: width, the significant octets of the destination, the router.</summary>
    static byte[] EncodeClasslessRoutes(IReadOnlyList<DhcpRoute> routes)
    {
        var bytes = new List<byte>();
        foreach (var route in routes)
        {
            int width = route.Destination.PrefixLength;
            bytes.Add((byte)width);
            bytes.AddRange(route.Destination.Network.Address.GetAddressBytes().AsSpan(0, (width + 7) / 8));
            bytes.AddRange(route.Router.GetAddressBytes());
        }
        return [.. bytes];
    }

    static List<DhcpRoute> DecodeClasslessRoutes(ReadOnlySpan<byte> value)
    {
        var routes = new List<DhcpRoute>();
        while (value.Length > 0)
        {
            int width = value[0];
            if (width > 32)
                throw new DhcpFormatException($"option 121: prefix length {width} is over 32");
            int octets = (width + 7) / 8;
            if (value.Length < 1 + octets + 4)
                throw new DhcpFormatException("option 121: a route runs past the end of the option");
            var destination = new byte[4];
            value.Slice(1, octets).CopyTo(destination);
            var prefix = new IpPrefix(new IPAddress(destination), width);
            // Bits past the prefix length must be zero (RFC 3442 section 2); a route that sets them is garbage.
            if (!prefix.Network.Address.Equals(prefix.Address))
                throw new DhcpFormatException($"option 121: {prefix} has host bits set");
            routes.Add(new DhcpRoute(prefix, new IPAddress(value.Slice(1 + octets, 4))));
            value = value[(1 + octets + 4)..];
        }
        return routes;
    }
}
