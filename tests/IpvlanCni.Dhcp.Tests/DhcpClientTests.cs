using System.Net;
using IpvlanCni.Dhcp;
using IpvlanCni.Network;

namespace IpvlanCni.Dhcp.Tests;

/// <summary>A clock that moves only when told (or when the fake transport waits).</summary>
public sealed class FakeClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// A scripted DHCP server: each message the client sends may get an answer (computed from it) after a delay; a
/// Receive with nothing due moves the fake clock by the whole timeout, as a real wait would.
/// </summary>
public sealed class FakeTransport(FakeClock clock) : IDhcpTransport
{
    readonly Queue<(DateTimeOffset At, byte[] Packet)> _due = new();
    public List<DhcpSend> Sent { get; } = [];
    public Func<DhcpMessage, DhcpMessage?> Server { get; set; } = _ => null;
    public TimeSpan Delay { get; set; } = TimeSpan.FromMilliseconds(5);

    public void Send(DhcpSend send)
    {
        Sent.Add(send);
        // Through the codec both ways, as on the wire.
        if (Server(DhcpMessage.Decode(send.Message.Encode())) is { } reply)
            _due.Enqueue((clock.Now + Delay, reply.Encode()));
    }

    public void Inject(byte[] packet) => _due.Enqueue((clock.Now, packet));

    public byte[]? Receive(TimeSpan timeout)
    {
        if (_due.TryPeek(out var next) && next.At <= clock.Now + timeout)
        {
            _due.Dequeue();
            if (next.At > clock.Now)
                clock.Now = next.At;
            return next.Packet;
        }
        clock.Now += timeout;
        return null;
    }

    public void Dispose() { }
}

public class DhcpClientTests
{
    static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    static readonly IPAddress ServerIp = IPAddress.Parse("10.10.0.254");
    static readonly IPAddress Leased = IPAddress.Parse("10.10.0.150");
    static readonly byte[] Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    readonly ClientIdentity _identity = new("net1", "c1", "eth0");
    uint _xid = 100;

    DhcpClient NewClient() => new(_identity, Mac, () => ++_xid);

    /// <summary>A dnsmasq-like server: OFFER for DISCOVER, ACK for REQUEST, lease 120 s, T1 10 s, T2 100 s.</summary>
    static DhcpMessage? Dnsmasq(DhcpMessage m) => m.Type switch
    {
        DhcpMessageType.Discover => Reply(m, DhcpMessageType.Offer),
        DhcpMessageType.Request => Reply(m, DhcpMessageType.Ack),
        _ => null,
    };

    static DhcpMessage Reply(DhcpMessage m, DhcpMessageType type) => new()
    {
        Op = 2,
        Type = type,
        TransactionId = m.TransactionId,
        Broadcast = m.Broadcast,
        YourAddress = type == DhcpMessageType.Nak ? IPAddress.Any : Leased,
        ClientHardwareAddress = m.ClientHardwareAddress,
        ClientId = m.ClientId,
        ServerId = ServerIp,
        LeaseSeconds = 120,
        RenewalSeconds = 10,
        RebindingSeconds = 100,
        SubnetMask = IPAddress.Parse("255.255.255.0"),
        Routers = [ServerIp],
        DnsServers = [ServerIp],
    };

    [Fact]
    public void Discover_offer_request_ack_binds_with_broadcast_flag_and_client_id_on_every_message()
    {
        var clock = new FakeClock(T0);
        var transport = new FakeTransport(clock) { Server = Dnsmasq };
        var client = NewClient();
        DhcpExchange.Run(client, transport, clock, client.Start(clock.Now), T0.AddSeconds(10));

        Assert.Equal(DhcpState.Bound, client.State);
        Assert.Equal([DhcpMessageType.Discover, DhcpMessageType.Request], transport.Sent.Select(s => s.Message.Type));
        Assert.All(transport.Sent, s =>
        {
            Assert.True(s.Message.Broadcast);
            Assert.Equal(IPAddress.Broadcast, s.Destination);
            Assert.Equal(_identity.ClientId, s.Message.ClientId);
        });
        var request = transport.Sent[1].Message;
        Assert.Equal(Leased, request.RequestedAddress);
        Assert.Equal(ServerIp, request.ServerId);
        Assert.Equal(IpPrefix.Parse("10.10.0.150/24"), client.Lease!.Address);
        Assert.Equal(client.Lease.AcquiredAt.AddSeconds(10), client.Lease.RenewAt);
        Assert.Equal(client.Lease.AcquiredAt.AddSeconds(100), client.Lease.RebindAt);
        Assert.Equal(client.Lease.AcquiredAt.AddSeconds(120), client.Lease.ExpiresAt);
        Assert.Equal(client.Lease.RenewAt, client.WakeAt);
    }

    [Fact]
    public void Lost_discover_is_retransmitted_after_one_second_then_two()
    {
        var clock = new FakeClock(T0);
        int discovers = 0;
        var transport = new FakeTransport(clock) { Server = m => m.Type == DhcpMessageType.Discover && ++discovers < 3 ? null : Dnsmasq(m) };
        var client = NewClient();
        DhcpExchange.Run(client, transport, clock, client.Start(clock.Now), T0.AddSeconds(30));
        Assert.Equal(DhcpState.Bound, client.State);
        var times = transport.Sent.Where(s => s.Message.Type == DhcpMessageType.Discover).Count();
        Assert.Equal(3, times);
        Assert.True(clock.Now - T0 < TimeSpan.FromSeconds(3.1), $"bound after {(clock.Now - T0).TotalSeconds} s");
    }

    [Fact]
    public void Replies_for_other_pods_are_ignored_foreign_client_id_or_transaction()
    {
        var clock = new FakeClock(T0);
        var transport = new FakeTransport(clock);
        var client = NewClient();
        var discover = client.Start(clock.Now);
        transport.Inject((Reply(discover.Message, DhcpMessageType.Offer) with { ClientId = new ClientIdentity("net1", "c2", "eth0").ClientId }).Encode());
        transport.Inject((Reply(discover.Message, DhcpMessageType.Offer) with { TransactionId = 7 }).Encode());
        transport.Inject([1, 2, 3]); // garbage
        DhcpExchange.Run(client, transport, clock, null, T0.AddSeconds(0.5));
        Assert.Equal(DhcpState.Selecting, client.State);
    }

    [Fact]
    public void Nak_while_requesting_starts_over_from_discover()
    {
        var clock = new FakeClock(T0);
        int requests = 0;
        var transport = new FakeTransport(clock)
        {
            Server = m => m.Type == DhcpMessageType.Request && ++requests == 1 ? Reply(m, DhcpMessageType.Nak) : Dnsmasq(m),
        };
        var client = NewClient();
        DhcpExchange.Run(client, transport, clock, client.Start(clock.Now), T0.AddSeconds(10));
        Assert.Equal(DhcpState.Bound, client.State);
        Assert.Equal([DhcpMessageType.Discover, DhcpMessageType.Request, DhcpMessageType.Discover, DhcpMessageType.Request],
            transport.Sent.Select(s => s.Message.Type));
    }

    DhcpClient Bound(FakeClock clock, FakeTransport transport)
    {
        transport.Server = Dnsmasq;
        var client = NewClient();
        DhcpExchange.Run(client, transport, clock, client.Start(clock.Now), clock.Now.AddSeconds(10));
        transport.Sent.Clear();
        return client;
    }

    [Fact]
    public void At_t1_it_renews_by_unicast_to_its_server_from_the_leased_address_and_stays_bound()
    {
        var clock = new FakeClock(T0);
        var transport = new FakeTransport(clock);
        var client = Bound(clock, transport);
        var first = client.Lease!;
        clock.Now = client.WakeAt;
        var renew = client.OnTimer(clock.Now)!;
        Assert.Equal(DhcpState.Renewing, client.State);
        Assert.Equal(ServerIp, renew.Destination);
        Assert.Equal(Leased, renew.Message.ClientAddress);
        Assert.Null(renew.Message.RequestedAddress);
        Assert.Null(renew.Message.ServerId);
        Assert.False(renew.Message.Broadcast);
        Assert.Equal(_identity.ClientId, renew.Message.ClientId);
        DhcpExchange.Run(client, transport, clock, renew, clock.Now.AddSeconds(3));
        Assert.Equal(DhcpState.Bound, client.State);
        Assert.True(client.Lease!.ExpiresAt > first.ExpiresAt);
    }

    [Fact]
    public void No_answer_to_renewals_rebinds_by_broadcast_at_t2_and_is_lost_at_expiry()
    {
        var clock = new FakeClock(T0);
        var transport = new FakeTransport(clock);
        var client = Bound(clock, transport);
        transport.Server = _ => null; // the server is gone
        var lease = client.Lease!;
        var states = new List<(DhcpState, IPAddress)>();
        while (client.State != DhcpState.Lost && clock.Now < lease.ExpiresAt.AddSeconds(5))
        {
            clock.Now = client.WakeAt;
            if (client.OnTimer(clock.Now) is { } send)
            {
                states.Add((client.State, send.Destination));
                DhcpExchange.Run(client, transport, clock, send, clock.Now.AddSeconds(3) < client.WakeAt ? clock.Now.AddSeconds(3) : client.WakeAt);
            }
        }
        Assert.Equal(DhcpState.Lost, client.State);
        Assert.Contains("expired", client.LostReason);
        Assert.Contains((DhcpState.Renewing, ServerIp), states);
        Assert.Contains((DhcpState.Rebinding, IPAddress.Broadcast), states);
        Assert.DoesNotContain(states, s => s.Item1 == DhcpState.Renewing && s.Item2.Equals(IPAddress.Broadcast));
        // Renewing until T2 and rebinding until expiry, each retry at least 4 s apart: a handful, not a flood.
        Assert.InRange(states.Count, 3, 40);
        Assert.Equal(DateTimeOffset.MaxValue, client.WakeAt);
    }

    [Fact]
    public void A_nak_to_a_renewal_loses_the_lease_with_the_servers_reason()
    {
        var clock = new FakeClock(T0);
        var transport = new FakeTransport(clock);
        var client = Bound(clock, transport);
        transport.Server = m => Reply(m, DhcpMessageType.Nak) with { Message = "address not available" };
        clock.Now = client.WakeAt;
        DhcpExchange.Run(client, transport, clock, client.OnTimer(clock.Now), clock.Now.AddSeconds(3));
        Assert.Equal(DhcpState.Lost, client.State);
        Assert.Contains("address not available", client.LostReason);
    }

    [Fact]
    public void Release_is_unicast_to_the_server_from_the_leased_address()
    {
        var clock = new FakeClock(T0);
        var transport = new FakeTransport(clock);
        var client = Bound(clock, transport);
        var release = client.Release()!;
        Assert.Equal(DhcpMessageType.Release, release.Message.Type);
        Assert.Equal(ServerIp, release.Destination);
        Assert.Equal(Leased, release.Message.ClientAddress);
        Assert.Equal(ServerIp, release.Message.ServerId);
        Assert.Equal(_identity.ClientId, release.Message.ClientId);
        Assert.Equal(DhcpState.Released, client.State);
        Assert.Null(client.Release());
    }

    [Fact]
    public void A_resumed_lease_renews_at_its_t1_or_at_once_when_t1_passed_while_the_agent_was_down()
    {
        var clock = new FakeClock(T0);
        var transport = new FakeTransport(clock);
        var lease = Bound(clock, transport).Lease!;

        var resumed = NewClient();
        resumed.Resume(lease);
        Assert.Equal(DhcpState.Bound, resumed.State);
        Assert.Null(resumed.OnTimer(lease.RenewAt.AddSeconds(-1)));
        var late = resumed.OnTimer(lease.RebindAt.AddSeconds(1))!;
        Assert.Equal(DhcpState.Rebinding, resumed.State);
        Assert.Equal(IPAddress.Broadcast, late.Destination);

        var expired = NewClient();
        expired.Resume(lease);
        Assert.Null(expired.OnTimer(lease.ExpiresAt));
        Assert.Equal(DhcpState.Lost, expired.State);

        var lost = NewClient();
        lost.Resume(lease, "NAK");
        Assert.Equal(DhcpState.Lost, lost.State);
    }

    [Fact]
    public void Client_identifier_is_type_0_and_unique_per_network_container_and_interface_and_stable()
    {
        var a = new ClientIdentity("net1", "c1", "eth0");
        Assert.Equal(17, a.ClientId.Length);
        Assert.Equal(0, a.ClientId[0]);
        Assert.Equal(a.ClientId, new ClientIdentity("net1", "c1", "eth0").ClientId);
        var others = new[] { new ClientIdentity("net2", "c1", "eth0"), new ClientIdentity("net1", "c2", "eth0"), new ClientIdentity("net1", "c1", "eth1"),
            new ClientIdentity("net1c", "1", "eth0") };
        Assert.All(others, o => Assert.NotEqual(a.ClientId, o.ClientId));
        Assert.Equal(5, others.Append(a).Select(i => i.Key).Distinct().Count());
        // Pinned: a change here would give every running pod a new identity (and address) at the next agent start.
        Assert.Equal("006cd9a377cd813591d26b566e284beede", Convert.ToHexStringLower(a.ClientId));
    }
}
