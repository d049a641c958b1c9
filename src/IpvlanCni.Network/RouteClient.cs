using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Network.Codecs;

namespace IpvlanCni.Network;

/// <summary>
/// rtnetlink (NETLINK_ROUTE) client for links, addresses, routes and neighbours. Bound to the network namespace
/// it was opened in, for its whole life, whatever thread uses it. Synchronous: a plugin is a short-lived process.
/// Errors: <see cref="NetlinkException"/> (errno, operation, extended ack).
/// </summary>
public sealed class RouteClient : IDisposable
{
    readonly NetlinkConnection _connection;

    /// <summary>Over a transport (a real socket, or a fake in tests).</summary>
    public RouteClient(INetlinkTransport transport) => _connection = new NetlinkConnection(transport);

    /// <summary>A socket in the calling thread's namespace.</summary>
    public static RouteClient Open() => new(NetlinkSocket.Open());

    /// <summary>A socket opened inside <paramref name="ns"/> (on a short-lived thread); it stays bound there.</summary>
    public static RouteClient OpenIn(NetNamespace ns) => new(ns.Run(() => NetlinkSocket.Open()));

    /// <summary>
    /// The cookie of the namespace this client is bound to: unlike an nsfs inode, never reused within a boot. Null for
    /// a fake transport and before Linux 5.14.
    /// </summary>
    public ulong? NamespaceCookie => (_connection.Transport as NetlinkSocket)?.NamespaceCookie;

    /// <summary>Requests sent so far (a dump counts once): for benchmarks and round-trip tests.</summary>
    public int RequestCount => _connection.RequestCount;

    // Links
    public LinkInfo? TryGetLink(string name)
    {
        using var request = LinkCodec.Get(0, name);
        return TryGet(request, $"get link {name}");
    }

    public LinkInfo? TryGetLink(int index)
    {
        using var request = LinkCodec.Get(index, null);
        return TryGet(request, $"get link #{index}");
    }

    public LinkInfo GetLink(string name)
    {
        using var request = LinkCodec.Get(0, name);
        return LinkCodec.Decode(Single(_connection.Execute(request, $"get link {name}"), $"get link {name}"));
    }

    public IReadOnlyList<LinkInfo> ListLinks()
    {
        using var request = LinkCodec.Dump();
        return [.. _connection.Execute(request, "list links").Select(m => LinkCodec.Decode(m.Payload))];
    }

    public void CreateLink(LinkSpec spec)
    {
        using var request = LinkCodec.Create(spec);
        _connection.Execute(request, $"create {LinkCodec.KindOf(spec)} link {spec.Name}");
    }

    public void ChangeLink(int index, LinkChange change)
    {
        using var request = LinkCodec.Change(index, change);
        _connection.Execute(request, $"change link #{index}");
    }

    public void DeleteLink(int index)
    {
        using var request = LinkCodec.Delete(index);
        _connection.Execute(request, $"delete link #{index}");
    }

    /// <summary>Deletes the link with this name in one round trip (no lookup first); false when there is none.</summary>
    public bool TryDeleteLink(string name)
    {
        using var request = LinkCodec.Delete(0, name);
        return _connection.ExecuteUnlessNotFound(request, $"delete link {name}") is not null;
    }

    /// <summary>Deletes the link with this index; false when there is none (any more).</summary>
    public bool TryDeleteLink(int index)
    {
        using var request = LinkCodec.Delete(index);
        return _connection.ExecuteUnlessNotFound(request, $"delete link #{index}") is not null;
    }

    // Addresses
    public void AddAddress(AddressInfo address)
    {
        using var request = AddressCodec.Add(address);
        _connection.Execute(request, $"add address {address.Prefix} to link #{address.LinkIndex}");
    }

    public void DeleteAddress(AddressInfo address)
    {
        using var request = AddressCodec.Delete(address);
        _connection.Execute(request, $"delete address {address.Prefix} from link #{address.LinkIndex}");
    }

    /// <summary>family: InterNetwork, InterNetworkV6 or Unspecified for both; linkIndex 0 = all links.</summary>
    public IReadOnlyList<AddressInfo> ListAddresses(AddressFamily family = AddressFamily.Unspecified, int linkIndex = 0)
    {
        using var request = AddressCodec.Dump(family, linkIndex);
        // The kernel filters too (strict checking); filtering again keeps a non-strict kernel or a fake honest.
        return [.. _connection.Execute(request, "list addresses")
            .Select(m => AddressCodec.Decode(m.Payload))
            .OfType<AddressInfo>()
            .Where(a => (family == AddressFamily.Unspecified || a.Prefix.Family == family) && (linkIndex == 0 || a.LinkIndex == linkIndex))];
    }

    // Routes (main table unless the RouteInfo says otherwise)
    public void AddRoute(RouteInfo route)
    {
        using var request = RouteCodec.Add(route, replace: false);
        _connection.Execute(request, $"add route {route.Destination}");
    }

    /// <summary>NLM_F_REPLACE: add or overwrite.</summary>
    public void ReplaceRoute(RouteInfo route)
    {
        using var request = RouteCodec.Add(route, replace: true);
        _connection.Execute(request, $"replace route {route.Destination}");
    }

    public void DeleteRoute(RouteInfo route)
    {
        using var request = RouteCodec.Delete(route);
        _connection.Execute(request, $"delete route {route.Destination}");
    }

    public IReadOnlyList<RouteInfo> ListRoutes(AddressFamily family = AddressFamily.Unspecified, int table = RouteInfo.MainTable)
    {
        using var request = RouteCodec.Dump(family, table);
        return [.. _connection.Execute(request, "list routes")
            .Select(m => RouteCodec.Decode(m.Payload))
            .OfType<RouteInfo>()
            .Where(r => (family == AddressFamily.Unspecified || r.Destination.Family == family) && (table == 0 || r.Table == table))];
    }

    // Neighbours
    public void AddNeighbour(NeighbourInfo neighbour)
    {
        using var request = NeighbourCodec.Add(neighbour);
        _connection.Execute(request, $"add neighbour {neighbour.Address} on link #{neighbour.LinkIndex}");
    }

    public void DeleteNeighbour(NeighbourInfo neighbour)
    {
        using var request = NeighbourCodec.Delete(neighbour);
        _connection.Execute(request, $"delete neighbour {neighbour.Address} on link #{neighbour.LinkIndex}");
    }

    public IReadOnlyList<NeighbourInfo> ListNeighbours(AddressFamily family = AddressFamily.Unspecified, int linkIndex = 0)
    {
        using var request = NeighbourCodec.Dump(family, linkIndex);
        return [.. _connection.Execute(request, "list neighbours")
            .Select(m => NeighbourCodec.Decode(m.Payload))
            .OfType<NeighbourInfo>()
            .Where(n => (family == AddressFamily.Unspecified || n.Address.AddressFamily == family) && (linkIndex == 0 || n.LinkIndex == linkIndex))];
    }

    // Namespace settings
    /// <summary>
    /// Whether this namespace forwards <paramref name="family"/> (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding:
    /// any value but 0 forwards); false when the kernel has no such family (IPv6 disabled at boot: EOPNOTSUPP).
    /// </summary>
    public bool IsForwarding(AddressFamily family)
    {
        using var request = NetconfCodec.GetAll(family);
        IReadOnlyList<NetlinkMessage> replies;
        try
        {
            replies = _connection.Execute(request, $"get {family} netconf");
        }
        catch (NetlinkException e) when (e.Code == Interop.Errno.EOPNOTSUPP)
        {
            return false;
        }
        return NetconfCodec.DecodeForwarding(Single(replies, $"get {family} netconf"))
            is { } forwarding ? forwarding != 0 : throw new NetlinkDecodeException($"{family} netconf without NETCONFA_FORWARDING");
    }

    public void Dispose() => _connection.Dispose();

    LinkInfo? TryGet(in NetlinkWriter request, string operation) =>
        _connection.ExecuteUnlessNotFound(request, operation) is { } replies ? LinkCodec.Decode(Single(replies, operation)) : null;

    static byte[] Single(IReadOnlyList<NetlinkMessage> replies, string operation) =>
        replies.Count == 1 ? replies[0].Payload : throw new NetlinkDecodeException($"{operation}: {replies.Count} replies, expected 1");
}
