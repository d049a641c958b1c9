using System.Net.Sockets;
using IpvlanCni.Netlink;

namespace IpvlanCni.Network;

/// <summary>
/// rtnetlink (NETLINK_ROUTE) client for links, addresses, routes and neighbours. Bound to the network namespace
/// it was opened in, for its whole life, whatever thread uses it. Synchronous: a plugin is a short-lived process.
/// Errors: <see cref="NetlinkException"/> (errno, operation, extended ack).
/// </summary>
public sealed class RouteClient : IDisposable
{
    /// <summary>Over a transport (a real socket, or a fake in tests).</summary>
    public RouteClient(INetlinkTransport transport) => throw new NotImplementedException();

    /// <summary>A socket in the calling thread's namespace.</summary>
    public static RouteClient Open() => throw new NotImplementedException();

    /// <summary>A socket opened inside <paramref name="ns"/> (on a short-lived thread); it stays bound there.</summary>
    public static RouteClient OpenIn(NetNamespace ns) => throw new NotImplementedException();

    /// <summary>Requests sent so far (a dump counts once): for benchmarks and round-trip tests.</summary>
    public int RequestCount => throw new NotImplementedException();

    // Links
    public LinkInfo? TryGetLink(string name) => throw new NotImplementedException();
    public LinkInfo? TryGetLink(int index) => throw new NotImplementedException();
    public LinkInfo GetLink(string name) => throw new NotImplementedException();
    public IReadOnlyList<LinkInfo> ListLinks() => throw new NotImplementedException();
    public void CreateLink(LinkSpec spec) => throw new NotImplementedException();
    public void ChangeLink(int index, LinkChange change) => throw new NotImplementedException();
    public void DeleteLink(int index) => throw new NotImplementedException();

    // Addresses
    public void AddAddress(AddressInfo address) => throw new NotImplementedException();
    public void DeleteAddress(AddressInfo address) => throw new NotImplementedException();
    /// <summary>family: InterNetwork, InterNetworkV6 or Unspecified for both; linkIndex 0 = all links.</summary>
    public IReadOnlyList<AddressInfo> ListAddresses(AddressFamily family = AddressFamily.Unspecified, int linkIndex = 0) => throw new NotImplementedException();

    // Routes (main table unless the RouteInfo says otherwise)
    public void AddRoute(RouteInfo route) => throw new NotImplementedException();
    /// <summary>NLM_F_REPLACE: add or overwrite.</summary>
    public void ReplaceRoute(RouteInfo route) => throw new NotImplementedException();
    public void DeleteRoute(RouteInfo route) => throw new NotImplementedException();
    public IReadOnlyList<RouteInfo> ListRoutes(AddressFamily family = AddressFamily.Unspecified, int table = RouteInfo.MainTable) => throw new NotImplementedException();

    // Neighbours
    public void AddNeighbour(NeighbourInfo neighbour) => throw new NotImplementedException();
    public void DeleteNeighbour(NeighbourInfo neighbour) => throw new NotImplementedException();
    public IReadOnlyList<NeighbourInfo> ListNeighbours(AddressFamily family = AddressFamily.Unspecified, int linkIndex = 0) => throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}
