using System.Net;
using IpvlanCni.Dhcp;
using IpvlanCni.Network;

namespace IpvlanCni.Dhcp.Tests;

/// <summary>The codec against packets captured from dnsmasq 2.90 in the sandbox (DhcpWireTests prints them).</summary>
public class DhcpMessageTests
{
    static byte[] Packet(string header, string options)
    {
        // The 236-byte BOOTP header as captured (sname and file all zero), then cookie and options.
        var bytes = Convert.FromHexString(header.PadRight(236 * 2, '0') + options);
        return bytes;
    }

    const string OfferHeader = "020106001234abcd00008000000000000a0a00820a0a00fe00000000ae1db9f83e26";
    const string OfferOptions = "6382536335010236040a0a00fe3304000000783a04000000083b04000000640104ffffff001c040a0a00ff0f0862697a2e74657374790d18c0a8320a0a00fe000a0a00fe06040a0a00fe03040a0a00feff";
    const string AckOptions = "6382536335010536040a0a00fe3304000000783a04000000083b04000000640104ffffff001c040a0a00ff0f0862697a2e74657374790d18c0a8320a0a00fe000a0a00fe06040a0a00fe03040a0a00feff";
    const string DiscoverHeader = "010106001234abcd0000800000000000000000000000000000000000ae1db9f83e26";
    const string DiscoverOptions = "638253633501013d11006e48a42d0a574e3184e94758126826a3390205dc37080103060f333a3b79ff";

    [Fact]
    public void Dnsmasq_offer_decodes_to_every_option_we_use()
    {
        var offer = DhcpMessage.Decode(Packet(OfferHeader, OfferOptions));
        Assert.Equal(2, offer.Op);
        Assert.Equal(DhcpMessageType.Offer, offer.Type);
        Assert.Equal(0x1234abcdu, offer.TransactionId);
        Assert.True(offer.Broadcast);
        Assert.Equal(IPAddress.Parse("10.10.0.130"), offer.YourAddress);
        Assert.Equal(IPAddress.Parse("10.10.0.254"), offer.ServerAddress);
        Assert.Equal(Convert.FromHexString("ae1db9f83e26"), offer.ClientHardwareAddress);
        Assert.Equal(IPAddress.Parse("10.10.0.254"), offer.ServerId);
        Assert.Equal(120u, offer.LeaseSeconds);
        Assert.Equal(8u, offer.RenewalSeconds);
        Assert.Equal(100u, offer.RebindingSeconds);
        Assert.Equal(IPAddress.Parse("255.255.255.0"), offer.SubnetMask);
        Assert.Equal([IPAddress.Parse("10.10.0.254")], offer.Routers);
        Assert.Equal([IPAddress.Parse("10.10.0.254")], offer.DnsServers);
        Assert.Equal("biz.test", offer.DomainName);
        Assert.Equal([new DhcpRoute(IpPrefix.Parse("192.168.50.0/24"), IPAddress.Parse("10.10.0.254")), new DhcpRoute(IpPrefix.Parse("0.0.0.0/0"), IPAddress.Parse("10.10.0.254"))],
            offer.ClasslessRoutes);
        Assert.Null(offer.ClientId); // dnsmasq does not echo option 61
    }

    [Fact]
    public void Dnsmasq_ack_becomes_a_lease_timed_from_the_request()
    {
        var ack = DhcpMessage.Decode(Packet(OfferHeader, AckOptions));
        Assert.Equal(DhcpMessageType.Ack, ack.Type);
        var at = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var lease = DhcpLease.FromAck(ack, at);
        Assert.Equal(IpPrefix.Parse("10.10.0.130/24"), lease.Address);
        Assert.Equal(IPAddress.Parse("10.10.0.254"), lease.Router);
        Assert.Equal(at.AddSeconds(8), lease.RenewAt);
        Assert.Equal(at.AddSeconds(100), lease.RebindAt);
        Assert.Equal(at.AddSeconds(120), lease.ExpiresAt);
    }

    [Fact]
    public void Our_discover_is_byte_for_byte_what_went_on_the_wire()
    {
        var identity = new ClientIdentity("wire", "c1", "dhcp0");
        var client = new DhcpClient(identity, Convert.FromHexString("ae1db9f83e26"), () => 0x1234abcd);
        var discover = client.Start(DateTimeOffset.UnixEpoch).Message.Encode();
        var expected = Packet(DiscoverHeader, DiscoverOptions);
        // Padded with zeros to BOOTP's 300-byte minimum.
        Assert.Equal(300, discover.Length);
        Assert.Equal(expected, discover[..expected.Length]);
        Assert.All(discover[expected.Length..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Every_field_round_trips()
    {
        var message = new DhcpMessage
        {
            Op = 2, Type = DhcpMessageType.Ack, TransactionId = 42, Seconds = 3, Broadcast = true,
            ClientAddress = IPAddress.Parse("10.0.0.1"), YourAddress = IPAddress.Parse("10.0.0.2"),
            ServerAddress = IPAddress.Parse("10.0.0.3"), RelayAddress = IPAddress.Parse("10.0.0.4"),
            ClientHardwareAddress = [1, 2, 3, 4, 5, 6], ClientId = [0, 9, 9], ServerId = IPAddress.Parse("10.0.0.5"),
            RequestedAddress = IPAddress.Parse("10.0.0.6"), LeaseSeconds = 600, RenewalSeconds = 300, RebindingSeconds = 500,
            SubnetMask = IPAddress.Parse("255.255.0.0"), Routers = [IPAddress.Parse("10.0.0.7"), IPAddress.Parse("10.0.0.8")],
            DnsServers = [IPAddress.Parse("10.0.0.9")], DomainName = "example.test",
            ClasslessRoutes = [new DhcpRoute(IpPrefix.Parse("10.1.0.0/16"), IPAddress.Parse("10.0.0.7")), new DhcpRoute(IpPrefix.Parse("10.2.3.128/25"), IPAddress.Any)],
            ParameterRequestList = [1, 3], MaxMessageSize = 1500, HostName = "pod", Message = "why",
        };
        var back = DhcpMessage.Decode(message.Encode());
        Assert.Equal(message.Encode(), back.Encode());
        Assert.Equal(message.ClasslessRoutes, back.ClasslessRoutes);
        Assert.Equal("why", back.Message);
    }

    [Fact]
    public void A_long_option_is_split_and_joined_again()
    {
        var message = new DhcpMessage { Type = DhcpMessageType.Discover, ClientId = [.. Enumerable.Range(0, 300).Select(i => (byte)i)] };
        Assert.Equal(message.ClientId, DhcpMessage.Decode(message.Encode()).ClientId);
    }

    [Theory]
    [InlineData("short", 100)]
    [InlineData("no cookie", -1)]
    [InlineData("option past the end", -2)]
    [InlineData("no message type", -3)]
    [InlineData("route with host bits", -4)]
    [InlineData("address option of 3 bytes", -5)]
    public void Malformed_packets_are_one_typed_exception(string what, int variant)
    {
        byte[] packet = variant switch
        {
            100 => new byte[100],
            -1 => Packet(OfferHeader, "00000000" + OfferOptions[8..]),
            -2 => Packet(OfferHeader, "63825363350102" + "3604" + "0a0a"),
            -3 => Packet(OfferHeader, "63825363ff"),
            -4 => Packet(OfferHeader, "6382536335010279" + "09" + "18c0a8320100000000" + "ff"),
            _ => Packet(OfferHeader, "63825363350102" + "3603" + "0a0a00" + "ff"),
        };
        var e = Assert.Throws<DhcpFormatException>(() => DhcpMessage.Decode(packet));
        Assert.False(string.IsNullOrEmpty(e.Message), what);
    }

    [Fact]
    public void Random_bytes_never_throw_anything_but_the_format_exception()
    {
        var random = new Random(12);
        var valid = Packet(OfferHeader, OfferOptions);
        for (int i = 0; i < 5000; i++)
        {
            var packet = (byte[])valid.Clone();
            for (int k = 0; k < 4; k++)
                packet[240 + random.Next(packet.Length - 240)] = (byte)random.Next(256);
            var cut = packet[..random.Next(packet.Length + 1)];
            try
            {
                DhcpMessage.Decode(cut);
            }
            catch (DhcpFormatException)
            {
            }
        }
    }
}
