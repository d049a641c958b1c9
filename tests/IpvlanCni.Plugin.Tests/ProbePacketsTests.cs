using System.Net;
using IpvlanCni.Plugin;

namespace IpvlanCni.Plugin.Tests;

/// <summary>ipam.probe's frames, byte for byte (RFC 5227 ARP probe, RFC 4862 DAD solicitation), and the answers' fields.</summary>
public class ProbePacketsTests
{
    [Fact]
    public void ArpProbeIsARequestFromZeroZeroZeroZeroForTheTarget()
    {
        var b = new byte[28];
        byte[] mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
        Assert.Equal(28, ProbePackets.WriteArpProbe(b, mac, IPAddress.Parse("10.77.0.100")));
        Assert.Equal(Convert.FromHexString("0001" + "0800" + "06" + "04" + "0001" + "020000000001" + "00000000" + "000000000000" + "0a4d0064"), b);
        // Our own probe (and anyone else's) names no holder; a reply from the holder names it.
        Assert.Null(ProbePackets.ArpSender(b));
        var reply = (byte[])b.Clone();
        reply[7] = 2;
        new byte[] { 10, 77, 0, 100 }.CopyTo(reply, 14);
        Assert.Equal(IPAddress.Parse("10.77.0.100"), ProbePackets.ArpSender(reply));
        Assert.Null(ProbePackets.ArpSender(reply.AsSpan(0, 27)));
    }

    [Fact]
    public void DadProbeIsASolicitationFromUnspecifiedToTheSolicitedNodeGroupWithAValidChecksum()
    {
        var b = new byte[64];
        var target = IPAddress.Parse("fd77::1:2:3");
        Assert.Equal(64, ProbePackets.WriteDadProbe(b, target));
        Assert.Equal(0x60, b[0]);
        Assert.Equal(24, b[5]);
        Assert.Equal(58, b[6]);
        Assert.Equal(255, b[7]);
        Assert.All(b[8..24], x => Assert.Equal(0, x));
        Assert.Equal(IPAddress.Parse("ff02::1:ff02:3"), new IPAddress(b[24..40]));
        Assert.Equal(135, b[40]);
        Assert.Equal(target, new IPAddress(b[48..64]));
        // A checksum over the message including its own checksum field sums to zero.
        Assert.Equal(0, ProbePackets.Icmpv6Checksum(b[8..24], b[24..40], b[40..64]));
        Assert.Equal(Convert.FromHexString("3333ff020003"), ProbePackets.SolicitedNodeMac(target));
        // Our solicitation is no advertisement; the holder's is.
        Assert.Null(ProbePackets.NeighbourAdvertisementTarget(b));
        b[40] = 136;
        Assert.Equal(target, ProbePackets.NeighbourAdvertisementTarget(b));
    }
}
