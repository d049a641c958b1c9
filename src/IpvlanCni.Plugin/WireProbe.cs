using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Interop;
using IpvlanCni.Ipam;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>
/// ipam.probe: before ADD configures an address, ask the wire whether another host already answers for it.
/// <c>true</c> or <c>{"timeoutMs": N, "attempts": M}</c>; absent or <c>false</c>: off (nothing of this runs).
/// </summary>
public sealed record WireProbeConfig(TimeSpan Timeout, int Attempts)
{
    public const int DefaultTimeoutMs = 200;
    public const int DefaultAttempts = 8;
    const string Key = "probe";

    /// <summary>null when the network does not probe; a probe only where the IPAM can keep an answered address from being handed out again.</summary>
    public static WireProbeConfig? Parse(JsonElement ipam, IIpam? allocator)
    {
        if (ipam.ValueKind != JsonValueKind.Object || !ipam.TryGetProperty(Key, out var value) || value.ValueKind is JsonValueKind.False or JsonValueKind.Null)
            return null;
        const string path = "ipam.probe";
        int timeoutMs = DefaultTimeoutMs, attempts = DefaultAttempts;
        switch (value.ValueKind)
        {
            case JsonValueKind.True:
                break;
            case JsonValueKind.Object:
                foreach (var property in value.EnumerateObject())
                {
                    int Number(int min, int max)
                    {
                        if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt32(out int n) || n < min || n > max)
                            throw PluginConfig.Invalid($"{path}.{property.Name}", $"must be a whole number from {min} to {max}");
                        return n;
                    }
                    switch (property.Name)
                    {
                        case "timeoutMs": timeoutMs = Number(10, 5000); break;
                        case "attempts": attempts = Number(1, 64); break;
                        default: throw PluginConfig.Invalid($"{path}.{property.Name}", "unknown key (timeoutMs, attempts)");
                    }
                }
                break;
            default:
                throw PluginConfig.Invalid(path, "must be true, false or an object {\"timeoutMs\": N, \"attempts\": M}");
        }
        if (allocator is not IConflictMarking)
            throw PluginConfig.Invalid(path, "probing needs an IPAM that can set an answered address aside: host-local or ipvlan-cni-ipam");
        return new WireProbeConfig(TimeSpan.FromMilliseconds(timeoutMs), attempts);
    }
}

/// <summary>
/// Probes the addresses IPAM reserved, from the master (where replies arrive: an ARP reply to a probe names target
/// 0.0.0.0, so ipvlan hands it to the master, not to a slave), before they are configured on the pod. An address
/// someone answers for is set aside by the IPAM (kept reserved under a conflict record, the attachment's other
/// addresses given back) and the attachment asks for the next, up to <see cref="WireProbeConfig.Attempts"/> times; every wait ends at the probe's deadline.
/// </summary>
static class WireProbe
{
    const ushort EtherTypeArp = 0x0806;
    const ushort EtherTypeIpv6 = 0x86DD;

    public static CniResult Claim(WireProbeConfig probe, IIpam ipam, CniRequest request, CniResult addresses, LinkInfo master, NetNamespace? masterNamespace)
    {
        var marking = (IConflictMarking)ipam;
        for (int attempt = 1; ; attempt++)
        {
            var answered = Answered(probe, addresses.Ips.Select(ip => ip.Address.Address).ToList(), master, masterNamespace);
            if (answered is null)
                return addresses;
            marking.SetAside(request, answered);
            if (attempt == probe.Attempts)
                throw new CniException(CniErrorCode.AddressesExhausted,
                    $"ipam.probe: another host on \"{master.Name}\" answered for each of {probe.Attempts} addresses tried (the last {IpMath.Format(answered)}); they are set aside, nothing is configured");
            addresses = ipam.Allocate(request);
        }
    }

    static void Send(FileDescriptor? arp, FileDescriptor? ipv6, List<IPAddress> v4, List<IPAddress> v6, byte[] mac, int index)
    {
        Span<byte> frame = stackalloc byte[72];
        foreach (var a in v4)
            Libc.SendPacket(arp!, frame[..ProbePackets.WriteArpProbe(frame, mac, a)], EtherTypeArp, index, ProbePackets.Broadcast);
        foreach (var a in v6)
            Libc.SendPacket(ipv6!, frame[..ProbePackets.WriteDadProbe(frame, a)], EtherTypeIpv6, index, ProbePackets.SolicitedNodeMac(a));
    }

    /// <summary>The first of the addresses another host answered for within the timeout, or null.</summary>
    public static IPAddress? Answered(WireProbeConfig probe, IReadOnlyList<IPAddress> addresses, LinkInfo master, NetNamespace? masterNamespace)
    {
        var v4 = addresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork).ToList();
        var v6 = addresses.Where(a => a.AddressFamily == AddressFamily.InterNetworkV6).ToList();
        // A packet socket belongs to the namespace it is opened in: the master's (a thread there when that is not ours).
        FileDescriptor Open(ushort etherType) => masterNamespace is null
            ? Libc.OpenPacketSocket(etherType, master.Index)
            : masterNamespace.Run(() => Libc.OpenPacketSocket(etherType, master.Index));
        using var arp = v4.Count > 0 ? Open(EtherTypeArp) : null;
        using var ipv6 = v6.Count > 0 ? Open(EtherTypeIpv6) : null;
        FileDescriptor[] sockets = arp is null ? [ipv6!] : ipv6 is null ? [arp] : [arp, ipv6];

        var mac = master.MacAddress.GetAddressBytes();
        void SendAll() => Send(arp, ipv6, v4, v6, mac, master.Index);

        // Two probes, the second half-way, so that one frame lost on a busy wire does not hide a holder.
        var clock = Stopwatch.StartNew();
        long timeout = (long)probe.Timeout.TotalMilliseconds;
        bool resent = false;
        SendAll();
        Span<byte> buffer = stackalloc byte[1500];
        while (true)
        {
            long left = timeout - clock.ElapsedMilliseconds;
            if (!resent && left <= timeout / 2)
            {
                SendAll();
                resent = true;
            }
            if (left <= 0)
                return null;
            long wait = resent ? left : left - timeout / 2;
            int ready = Libc.WaitReadable(sockets, (int)Math.Max(1, wait));
            if (ready < 0)
                continue;
            var socket = sockets[ready];
            // Drain what is queued; our own probes come back as PACKET_OUTGOING.
            while (Libc.ReceivePacket(socket, buffer, out byte type) is var n && n >= 0)
            {
                if (type == Libc.PACKET_OUTGOING)
                    continue;
                var holder = socket == arp ? ProbePackets.ArpSender(buffer[..n]) : ProbePackets.NeighbourAdvertisementTarget(buffer[..n]);
                if (holder is not null && addresses.FirstOrDefault(a => a.Equals(holder)) is { } taken)
                    return taken;
            }
        }
    }
}

/// <summary>The probe frames' payloads (the kernel adds the Ethernet header) and the answers' fields. Pure: bytes only.</summary>
public static class ProbePackets
{
    public static ReadOnlySpan<byte> Broadcast => [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

    /// <summary>
    /// RFC 5227's ARP probe: a request for <paramref name="target"/> with sender address 0.0.0.0, so that no
    /// neighbour cache learns anything from it; a holder answers with a reply whose sender address is the target.
    /// </summary>
    public static int WriteArpProbe(Span<byte> b, ReadOnlySpan<byte> senderMac, IPAddress target)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, 1);          // ar_hrd: ARPHRD_ETHER
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], 0x0800); // ar_pro: ETH_P_IP
        b[4] = 6;                                              // ar_hln
        b[5] = 4;                                              // ar_pln
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], 1);      // ar_op: ARPOP_REQUEST
        senderMac.CopyTo(b[8..14]);                            // sha
        b[14..18].Clear();                                     // spa 0.0.0.0
        b[18..24].Clear();                                     // tha
        target.TryWriteBytes(b[24..28], out _);                // tpa
        return 28;
    }

    /// <summary>The sender protocol address of an IPv4-over-Ethernet ARP packet (any operation), or null.</summary>
    public static IPAddress? ArpSender(ReadOnlySpan<byte> p)
    {
        if (p.Length < 28 || BinaryPrimitives.ReadUInt16BigEndian(p) != 1 || BinaryPrimitives.ReadUInt16BigEndian(p[2..]) != 0x0800 || p[4] != 6 || p[5] != 4)
            return null;
        var sender = new IPAddress(p[14..18]);
        return sender.Equals(IPAddress.Any) ? null : sender; // another host's probe names no holder
    }

    /// <summary>
    /// RFC 4862 duplicate address detection: a neighbour solicitation for <paramref name="target"/> from :: to its
    /// solicited-node group, hop limit 255, no source link-layer option; a holder answers with an advertisement to
    /// all nodes.
    /// </summary>
    public static int WriteDadProbe(Span<byte> b, IPAddress target)
    {
        Span<byte> destination = stackalloc byte[16];
        SolicitedNode(target, destination);
        b[..40].Clear();
        b[0] = 0x60;                                          // version 6
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], 24);   // payload length: ICMPv6 NS without options
        b[6] = 58;                                           // next header: ICMPv6
        b[7] = 255;                                          // hop limit (RFC 4861 requires 255)
        destination.CopyTo(b[24..40]);                       // source stays ::
        var icmp = b[40..64];
        icmp.Clear();
        icmp[0] = 135;                                       // neighbour solicitation
        target.TryWriteBytes(icmp[8..24], out _);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Icmpv6Checksum(b[8..24], destination, icmp));
        return 64;
    }

    /// <summary>The target of an ICMPv6 neighbour advertisement (IPv6 packet without extension headers), or null.</summary>
    public static IPAddress? NeighbourAdvertisementTarget(ReadOnlySpan<byte> p)
    {
        if (p.Length < 64 || p[0] >> 4 != 6 || p[6] != 58 || p[40] != 136 || p[41] != 0)
            return null;
        return new IPAddress(p[48..64]);
    }

    /// <summary>ff02::1:ffXX:XXXX, the group a holder of the address listens on.</summary>
    public static void SolicitedNode(IPAddress address, Span<byte> group)
    {
        Span<byte> a = stackalloc byte[16];
        address.TryWriteBytes(a, out _);
        group.Clear();
        group[0] = 0xff;
        group[1] = 0x02;
        group[11] = 0x01;
        group[12] = 0xff;
        a[13..16].CopyTo(group[13..16]);
    }

    /// <summary>33:33 and the group's last four bytes (RFC 2464).</summary>
    public static byte[] SolicitedNodeMac(IPAddress address)
    {
        Span<byte> group = stackalloc byte[16];
        SolicitedNode(address, group);
        return [0x33, 0x33, group[12], group[13], group[14], group[15]];
    }

    /// <summary>RFC 4443 checksum over the pseudo-header (source, destination, length, next header 58) and the message.</summary>
    public static ushort Icmpv6Checksum(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, ReadOnlySpan<byte> message)
    {
        uint sum = 0;
        static uint Add(uint sum, ReadOnlySpan<byte> data)
        {
            int i = 0;
            for (; i + 1 < data.Length; i += 2)
                sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            if (i < data.Length)
                sum += (uint)data[i] << 8;
            return sum;
        }
        sum = Add(sum, source);
        sum = Add(sum, destination);
        sum += (uint)message.Length;
        sum += 58;
        sum = Add(sum, message);
        while (sum >> 16 != 0)
            sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }
}
