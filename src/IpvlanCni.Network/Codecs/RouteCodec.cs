using System.Net;
using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Network.Codecs;

/// <summary>RTM_*ROUTE messages to and from <see cref="RouteInfo"/>.</summary>
internal static class RouteCodec
{
    // linux/rtnetlink.h: RT_TABLE_UNSPEC; rtm_table is a byte, so tables above 255 travel only in RTA_TABLE.
    const byte TableUnspecified = 0;

    public static NetlinkWriter Add(RouteInfo route, bool replace) =>
        Write(NetlinkMessageType.NewRoute,
            NetlinkMessageFlags.Create | (replace ? NetlinkMessageFlags.Replace : NetlinkMessageFlags.Excl), route, delete: false);

    public static NetlinkWriter Delete(RouteInfo route) => Write(NetlinkMessageType.DeleteRoute, NetlinkMessageFlags.None, route, delete: true);

    /// <summary>With NETLINK_GET_STRICT_CHK the kernel filters by family and table (rtm_table / RTA_TABLE).</summary>
    public static NetlinkWriter Dump(AddressFamily family, int table)
    {
        var w = new NetlinkWriter(NetlinkMessageType.GetRoute, NetlinkMessageFlags.Dump);
        new RouteHeader(Family.ToKernel(family), 0, 0, 0, ByteTable(table), 0, 0, 0, 0).Write(w.Reserve(RouteHeader.Size));
        if (table > 0)
            w.PutUInt32(RouteAttribute.Table, (uint)table);
        return w;
    }

    static NetlinkWriter Write(NetlinkMessageType type, NetlinkMessageFlags flags, RouteInfo route, bool delete)
    {
        var w = new NetlinkWriter(type, flags);
        var destination = route.Destination;
        // Deleting: RT_SCOPE_NOWHERE and protocol 0 are wildcards, so a route read back from a dump always matches.
        byte scope = delete ? (byte)RouteScope.Nowhere : (byte)route.Scope;
        byte protocol = delete ? (byte)0 : route.Protocol;
        var onLink = route.OnLink ? NextHopFlags.OnLink : NextHopFlags.None;
        new RouteHeader(Family.ToKernel(destination.Family), (byte)destination.PrefixLength, 0, 0, ByteTable(route.Table),
            protocol, scope, route.Type, (uint)onLink).Write(w.Reserve(RouteHeader.Size));
        w.PutUInt32(RouteAttribute.Table, (uint)route.Table);
        if (destination.PrefixLength > 0)
            w.PutAddress(RouteAttribute.Destination, destination.Network.Address);
        if (route.NextHops.Count == 0)
        {
            if (route.Gateway is { } gateway)
                w.PutAddress(RouteAttribute.Gateway, gateway);
            if (route.LinkIndex != 0)
                w.PutUInt32(RouteAttribute.OutputInterface, (uint)route.LinkIndex);
        }
        if (route.Metric is { } metric)
            w.PutUInt32(RouteAttribute.Priority, metric);
        if (route.PreferredSource is { } source)
            w.PutAddress(RouteAttribute.PreferredSource, source);
        // Not on delete: the kernel would then match metrics too, and a route whose MTU was replaced since could not be removed.
        if (!delete && (route.Mtu is not null || route.AdvertisedMss is not null))
        {
            int metrics = w.BeginNested(RouteAttribute.Metrics);
            if (route.Mtu is { } mtu)
                w.PutUInt32(RouteMetricAttribute.Mtu, (uint)mtu);
            if (route.AdvertisedMss is { } mss)
                w.PutUInt32(RouteMetricAttribute.AdvertisedMss, (uint)mss);
            w.EndNested(metrics);
        }
        if (route.NextHops.Count > 0)
        {
            // RTA_MULTIPATH: rtnexthop records, each followed by its own RTA_GATEWAY; rtnh_len covers both.
            int multipath = w.BeginNested(RouteAttribute.Multipath);
            foreach (var hop in route.NextHops)
            {
                if (hop.Weight is < 1 or > 256)
                    throw new ArgumentOutOfRangeException(nameof(route), $"next hop weight {hop.Weight} is outside 1..256");
                int start = w.Length;
                new NextHopHeader(0, hop.OnLink ? NextHopFlags.OnLink : NextHopFlags.None, (byte)(hop.Weight - 1), hop.LinkIndex)
                    .Write(w.Reserve(NextHopHeader.Size));
                if (hop.Gateway is { } gateway)
                    w.PutAddress(RouteAttribute.Gateway, gateway);
                w.EndNested(start);
            }
            w.EndNested(multipath);
        }
        return w;
    }

    /// <summary>An RTM_NEWROUTE payload; null for a family other than IPv4/IPv6.</summary>
    public static RouteInfo? Decode(ReadOnlySpan<byte> payload)
    {
        var header = RouteHeader.Read(payload);
        var family = Family.FromKernel(header.Family);
        if (family is null)
            return null;
        int max = family == AddressFamily.InterNetwork ? 32 : 128;
        if (header.DestinationLength > max)
            throw new NetlinkDecodeException($"route: prefix length {header.DestinationLength} in family {header.Family}");
        IPAddress destination = family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
        IPAddress? gateway = null, source = null;
        int table = header.Table, oif = 0;
        uint? metric = null;
        int? mtu = null, mss = null;
        var hops = new List<NextHop>();
        var r = new AttributeReader(payload[RouteHeader.Size..]);
        while (r.Next())
        {
            switch (r.TypeAs<RouteAttribute>())
            {
                case RouteAttribute.Destination: destination = Address(ref r, family.Value); break;
                case RouteAttribute.Gateway: gateway = Address(ref r, family.Value); break;
                case RouteAttribute.OutputInterface: oif = r.GetInt32(); break;
                case RouteAttribute.Priority: metric = r.GetUInt32(); break;
                case RouteAttribute.PreferredSource: source = Address(ref r, family.Value); break;
                case RouteAttribute.Table: table = (int)r.GetUInt32(); break;
                case RouteAttribute.Metrics:
                    var m = r.GetNested();
                    while (m.Next())
                    {
                        switch (m.TypeAs<RouteMetricAttribute>())
                        {
                            case RouteMetricAttribute.Mtu: mtu = (int)m.GetUInt32(); break;
                            case RouteMetricAttribute.AdvertisedMss: mss = (int)m.GetUInt32(); break;
                        }
                    }
                    break;
                case RouteAttribute.Multipath:
                    DecodeNextHops(r.Value, family.Value, hops);
                    break;
            }
        }
        return new RouteInfo(new IpPrefix(destination, header.DestinationLength))
        {
            Gateway = gateway,
            LinkIndex = oif,
            Scope = (RouteScope)header.Scope,
            Table = table,
            OnLink = (header.Flags & (uint)NextHopFlags.OnLink) != 0,
            PreferredSource = source,
            Metric = metric,
            Mtu = mtu,
            AdvertisedMss = mss,
            Protocol = header.Protocol,
            Type = header.Type,
            NextHops = hops,
        };
    }

    static void DecodeNextHops(ReadOnlySpan<byte> value, AddressFamily family, List<NextHop> hops)
    {
        while (!value.IsEmpty)
        {
            var hop = NextHopHeader.Read(value);
            if (hop.Length < NextHopHeader.Size || hop.Length > value.Length)
                throw new NetlinkDecodeException($"rtnexthop: length {hop.Length} is outside {NextHopHeader.Size}..{value.Length}");
            IPAddress? gateway = null;
            var r = new AttributeReader(value[NextHopHeader.Size..hop.Length]);
            while (r.Next())
                if (r.TypeAs<RouteAttribute>() == RouteAttribute.Gateway)
                    gateway = Address(ref r, family);
            hops.Add(new NextHop(gateway, hop.Index) { OnLink = (hop.Flags & NextHopFlags.OnLink) != 0, Weight = hop.Hops + 1 });
            // #define RTNH_ALIGN(len) (((len)+RTNH_ALIGNTO-1) & ~(RTNH_ALIGNTO-1)), RTNH_ALIGNTO = 4
            value = value[Math.Min(NetlinkAlign.Attribute(hop.Length), value.Length)..];
        }
    }

    static IPAddress Address(ref AttributeReader r, AddressFamily family)
    {
        var address = r.GetAddress();
        return address.AddressFamily == family ? address : throw new NetlinkDecodeException($"route attribute {r.Type}: {address} in a {family} route");
    }

    static byte ByteTable(int table) => table is > 0 and < 256 ? (byte)table : TableUnspecified;
}
