using System.Net;
using IpvlanCni.Network;

namespace IpvlanCni.Dhcp;

/// <summary>A lease as an ACK granted it, with its timers as absolute times (they survive an agent restart on disk).</summary>
public sealed record DhcpLease
{
    public required IpPrefix Address { get; init; }
    public required IPAddress ServerId { get; init; }
    public IPAddress? Router { get; init; }
    public IReadOnlyList<IPAddress> DnsServers { get; init; } = [];
    public string? DomainName { get; init; }
    public IReadOnlyList<DhcpRoute> ClasslessRoutes { get; init; } = [];
    public required DateTimeOffset AcquiredAt { get; init; }
    /// <summary>T1: time to renew with the server that granted it.</summary>
    public required DateTimeOffset RenewAt { get; init; }
    /// <summary>T2: time to ask any server.</summary>
    public required DateTimeOffset RebindAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }

    const uint Infinite = uint.MaxValue;

    /// <summary>
    /// The lease an ACK grants, its clock starting when the request was sent (RFC 2131 4.4.1). T1 and T2 default
    /// to 1/2 and 7/8 of the lease (RFC 2131 4.4.5); an infinite lease never renews.
    /// </summary>
    public static DhcpLease FromAck(DhcpMessage ack, DateTimeOffset requestedAt)
    {
        if (ack.YourAddress.Equals(IPAddress.Any))
            throw new DhcpFormatException("ACK without an address (yiaddr 0.0.0.0)");
        var serverId = ack.ServerId ?? throw new DhcpFormatException("ACK without a server identifier (option 54)");
        uint lease = ack.LeaseSeconds ?? throw new DhcpFormatException("ACK without a lease time (option 51)");
        DateTimeOffset At(uint seconds) => seconds == Infinite ? DateTimeOffset.MaxValue : requestedAt.AddSeconds(seconds);
        uint t1 = ack.RenewalSeconds ?? (lease == Infinite ? Infinite : lease / 2);
        uint t2 = ack.RebindingSeconds ?? (lease == Infinite ? Infinite : (uint)(lease * 7UL / 8));
        // T1 past T2, or T2 past the lease, makes no sense: the defaults instead.
        if (lease != Infinite && (t2 > lease || t1 > t2))
            (t1, t2) = (lease / 2, (uint)(lease * 7UL / 8));
        return new DhcpLease
        {
            Address = new IpPrefix(ack.YourAddress, PrefixLength(ack.SubnetMask, ack.YourAddress)),
            ServerId = serverId,
            Router = ack.Routers.FirstOrDefault(),
            DnsServers = ack.DnsServers,
            DomainName = ack.DomainName,
            ClasslessRoutes = ack.ClasslessRoutes,
            AcquiredAt = requestedAt,
            RenewAt = At(t1),
            RebindAt = At(t2),
            ExpiresAt = At(lease),
        };
    }

    /// <summary>Option 1 as a prefix length; without it, the address's class (RFC 2131 leaves it to the client).</summary>
    static int PrefixLength(IPAddress? mask, IPAddress address)
    {
        if (mask is null)
        {
            byte first = address.GetAddressBytes()[0];
            return first < 128 ? 8 : first < 192 ? 16 : 24;
        }
        uint bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(mask.GetAddressBytes());
        int length = System.Numerics.BitOperations.PopCount(bits);
        // A mask is ones then zeros.
        if (length != 0 && bits != uint.MaxValue << (32 - length))
            throw new DhcpFormatException($"subnet mask {mask} is not contiguous");
        return length;
    }
}
