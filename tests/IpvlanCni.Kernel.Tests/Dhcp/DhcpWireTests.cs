using System.Net;
using IpvlanCni.Dhcp;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using Xunit.Abstractions;

namespace IpvlanCni.Kernel.Tests.Dhcp;

/// <summary>
/// The DHCP client and its UDP transport on a bare ipvlan slave (up, no address) against dnsmasq: what the design
/// depends on, measured. The packets printed here are the golden bytes of the codec's unit tests.
/// </summary>
public class DhcpWireTests(ITestOutputHelper output) : KernelTest
{
    sealed class Recording(IDhcpTransport inner, ITestOutputHelper output) : IDhcpTransport
    {
        public List<DhcpMessage> Received { get; } = [];

        public void Send(DhcpSend send)
        {
            output.WriteLine($"sent {send.Message.Type} to {send.Destination}: {Convert.ToHexStringLower(send.Message.Encode())}");
            inner.Send(send);
        }

        public byte[]? Receive(TimeSpan timeout)
        {
            var packet = inner.Receive(timeout);
            if (packet is not null)
            {
                var message = DhcpMessage.Decode(packet);
                Received.Add(message);
                output.WriteLine($"received {message.Type}: {Convert.ToHexStringLower(packet)}");
            }
            return packet;
        }

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void A_slave_without_an_address_gets_broadcast_offer_and_ack_and_renews_by_unicast_from_its_lease()
    {
        using var dhcp = new DhcpLab();
        dhcp.StartDnsmasq("--dhcp-option=option:classless-static-route,192.168.50.0/24,10.10.0.254,0.0.0.0/0,10.10.0.254", "--domain=biz.test");
        var pod = dhcp.Lab.AddPod();
        using var client = RouteClient.OpenIn(pod.Namespace);
        var master = dhcp.Lab.NodeClient.GetLink(DhcpLab.Segment.Master);
        dhcp.Lab.NodeClient.CreateLink(new IpvlanLinkSpec("dhcp0", master.Index, IpvlanMode.L2) { Namespace = pod.Namespace });
        var link = client.GetLink("dhcp0");
        client.ChangeLink(link.Index, new LinkChange { Up = true });

        var identity = new ClientIdentity("wire", "c1", "dhcp0");
        var machine = new DhcpClient(identity, link.MacAddress.GetAddressBytes(), () => 0x1234abcd);
        using var transport = new Recording(UdpDhcpTransport.Open(pod.Namespace, "dhcp0"), output);
        var clock = TimeProvider.System;
        DhcpExchange.Run(machine, transport, clock, machine.Start(clock.GetUtcNow()), clock.GetUtcNow().AddSeconds(10));

        Assert.Equal(DhcpState.Bound, machine.State);
        var offer = Assert.Single(transport.Received, m => m.Type == DhcpMessageType.Offer);
        var ack = Assert.Single(transport.Received, m => m.Type == DhcpMessageType.Ack);
        Assert.True(offer.Broadcast && ack.Broadcast, "dnsmasq answers a BROADCAST-flagged request by broadcast");
        // dnsmasq 2.90 does not echo option 61 (RFC 6842): replies are told apart by transaction ID alone.
        Assert.Null(ack.ClientId);
        var lease = machine.Lease!;
        Assert.Equal(DhcpLab.Server, lease.ServerId);
        Assert.Equal(24, lease.Address.PrefixLength);
        Assert.Equal("biz.test", lease.DomainName);
        Assert.Equal([IpPrefix.Parse("192.168.50.0/24"), IpPrefix.Parse("0.0.0.0/0")], lease.ClasslessRoutes.Select(r => r.Destination));
        Assert.Equal(dhcp.RenewSeconds, (int)Math.Round((lease.RenewAt - lease.AcquiredAt).TotalSeconds));
        var served = Assert.Single(dhcp.Leases());
        Assert.Equal(lease.Address.Address, served.Address);
        Assert.Equal(Convert.ToHexStringLower(identity.ClientId), served.ClientId.Replace(":", ""));

        // RENEWING: the address on the link, a unicast REQUEST to the server, a unicast ACK back.
        client.AddAddress(new AddressInfo(link.Index, lease.Address));
        long expiry = served.Expiry;
        Thread.Sleep(1100); // dnsmasq's lease times are in whole seconds
        var renew = machine.OnTimer(lease.RenewAt)!;
        Assert.Equal(DhcpState.Renewing, machine.State);
        Assert.Equal(DhcpLab.Server, renew.Destination);
        DhcpExchange.Run(machine, transport, clock, renew, clock.GetUtcNow().AddSeconds(5));
        Assert.Equal(DhcpState.Bound, machine.State);
        Assert.False(transport.Received[^1].Broadcast);
        Assert.True(dhcp.Leases().Single().Expiry > expiry, "dnsmasq extended the lease");

        // RELEASE from the leased address: dnsmasq drops the lease.
        transport.Send(machine.Release()!);
        dhcp.WaitFor(() => dhcp.Leases().Count == 0, TimeSpan.FromSeconds(5), "dnsmasq to drop the released lease");
    }
}
