using System.Net.NetworkInformation;
using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Network;
using IpvlanCni.Plugin;

namespace IpvlanCni.Explain;

/// <summary>
/// Reads the live node through our netlink client: the node's namespace, every namespace under /run/netns and every
/// process's (/proc/*/ns/net), each once by (device, inode); and NAT from the plugin's own records (which networks
/// masquerade which subnets), never from parsing nft or iptables output. Read-only: it changes nothing on the node.
/// </summary>
public static class SnapshotReader
{
    public const string NodeId = "node";

    /// <summary>Everything at once, as plain data (to record, save or replay).</summary>
    /// <param name="node">The node's namespace (the caller's, for the CLI).</param>
    /// <param name="stateDir">The plugin's state folder (its records say which networks masquerade).</param>
    /// <param name="first">Namespace paths to read first, under these names (the one the question is about).</param>
    public static NodeSnapshot Read(NetNamespace node, string stateDir, params string[] first)
    {
        using var live = LiveNode.Read(node, stateDir, first);
        return live.ToSnapshot();
    }
}

/// <summary>
/// The live node as the model reads it (<see cref="NodeView"/>): one thread enters each namespace in turn, opens a
/// netlink socket there and dumps its links and addresses; the socket stays open, bound to its namespace, and a
/// namespace's routes, neighbours and forwarding switches (RTM_GETNETCONF) are read over it from this thread only
/// when the walk first needs them, the plugin's records only when a packet leaves the node's namespace through
/// NAT's reach. Dispose closes the sockets.
/// </summary>
public sealed class LiveNode : IDisposable
{
    readonly List<RouteClient> _clients;

    LiveNode(NodeView view, List<RouteClient> clients) => (View, _clients) = (view, clients);

    public NodeView View { get; }

    /// <inheritdoc cref="SnapshotReader.Read"/>
    public static LiveNode Read(NetNamespace node, string stateDir, params string[] first)
    {
        var opened = new List<(NetNamespace Ns, string Id)>();
        var seen = new HashSet<(ulong, ulong)> { (node.Device, node.Inode) };
        try
        {
            foreach (string path in first.Concat(Candidates()))
            {
                NetNamespace ns;
                try
                {
                    ns = NetNamespace.Open(path);
                }
                catch (NamespaceException)
                {
                    continue; // gone meanwhile, or not a namespace mount
                }
                if (seen.Add((ns.Device, ns.Inode)))
                    opened.Add((ns, path));
                else
                    ns.Dispose();
            }
            var all = new List<(NetNamespace Ns, string Id)> { (node, SnapshotReader.NodeId) };
            all.AddRange(opened);
            // One thread (starting threads is the expensive part; the sandbox has one CPU) visits them all in turn.
            var visited = NetNamespace.RunInEach([.. all.Select(n => n.Ns)], ns => Visit(ns));
            var namespaces = new List<NamespaceView>();
            var clients = new List<RouteClient>();
            if (visited[0] is null)
            {
                foreach (var read in visited)
                    read?.Client.Dispose();
                throw new NamespaceException("cannot read the node's own namespace");
            }
            for (int i = 0; i < all.Count; i++)
            {
                if (visited[i] is not { } read)
                    continue;
                clients.Add(read.Client);
                namespaces.Add(new NamespaceView(all[i].Id, all[i].Ns.Device, all[i].Ns.Inode, read.Links, read.Addresses, () => ReadRouting(read.Client)));
            }
            return new LiveNode(new NodeView(SnapshotReader.NodeId, namespaces, () => ReadMasquerade(stateDir)), clients);
        }
        finally
        {
            foreach (var (ns, _) in opened)
                ns.Dispose();
        }
    }

    /// <summary>The namespace's <see cref="NamespaceView.Id"/>: the node's, or the first path it was found under.</summary>
    public string IdOf(NetNamespace node, NetNamespace ns) => ns.IsSame(node) ? View.Node
        : View.Namespaces.First(n => n.Device == ns.Device && n.Inode == ns.Inode).Id;

    /// <summary>Everything, read now where the walk did not need it yet.</summary>
    public NodeSnapshot ToSnapshot() => new(View.Node,
        [.. View.Namespaces.Select(n => new NamespaceSnapshot(n.Id, n.Device, n.Inode, n.Routing.ForwardingIPv4, n.Routing.ForwardingIPv6,
            n.Links, n.Addresses, n.Routing.Routes, n.Routing.Neighbours))],
        View.Masquerade);

    public void Dispose()
    {
        foreach (var client in _clients)
            client.Dispose();
    }

    /// <summary>On the visiting thread, inside the namespace: a socket bound to it, its links and addresses; null when it went away meanwhile.</summary>
    static (RouteClient Client, List<LinkSnapshot> Links, List<AddressSnapshot> Addresses)? Visit(NetNamespace ns)
    {
        RouteClient? client = null;
        try
        {
            client = new RouteClient(NetlinkSocket.Open());
            List<LinkSnapshot> links = [.. client.ListLinks().Select(Link)];
            List<AddressSnapshot> addresses = [.. client.ListAddresses().Select(a => new AddressSnapshot(a.LinkIndex, a.Prefix.ToString(),
                (a.Flags & (AddressFlags.Tentative | AddressFlags.DadFailed)) != 0))];
            return (client, links, addresses);
        }
        catch (Exception e) when (e is IOException or IpvlanCni.Interop.SystemCallException or NetlinkException)
        {
            client?.Dispose();
            return null;
        }
    }

    /// <summary>Over the namespace's own socket, from any thread.</summary>
    static RoutingSnapshot ReadRouting(RouteClient client) => new(
        client.IsForwarding(AddressFamily.InterNetwork), client.IsForwarding(AddressFamily.InterNetworkV6),
        [.. client.ListRoutes().Select(Route)],
        [.. client.ListNeighbours().Select(n => new NeighbourSnapshot(n.LinkIndex, n.Address.ToString(),
            n.MacAddress.GetAddressBytes().Length == 0 ? null : Mac(n.MacAddress), StateName(n.State)))]);

    /// <summary>/run/netns entries first (their names read best), then one path per process namespace not seen yet.</summary>
    static IEnumerable<string> Candidates()
    {
        if (Directory.Exists(NetNamespace.NamedDirectory))
            foreach (string path in Directory.GetFiles(NetNamespace.NamedDirectory).Order(StringComparer.Ordinal))
                yield return path;
        var inodes = new HashSet<string>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _))
                continue;
            string path = Path.Combine(dir, "ns", "net");
            string? target;
            try
            {
                target = new FileInfo(path).LinkTarget; // "net:[4026531840]": one open per namespace, not per process
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (target is not null && inodes.Add(target))
                yield return path;
        }
    }

    static LinkSnapshot Link(LinkInfo l) => new(l.Index, l.Name, l.Kind, l.ParentIndex, l.ParentNamespaceId, Mac(l.MacAddress), l.IsUp, l.NoArp,
        l.IpvlanMode switch { IpvlanMode.L2 => "l2", IpvlanMode.L3 => "l3", IpvlanMode.L3S => "l3s", _ => null },
        l.IpvlanFlag switch { IpvlanFlag.Bridge => "bridge", IpvlanFlag.Private => "private", IpvlanFlag.Vepa => "vepa", _ => null },
        l.VlanId);

    static RouteSnapshot Route(RouteInfo r) => new(r.Destination.ToString(), r.LinkIndex, r.Gateway?.ToString(), r.Table, r.Type,
        r.PreferredSource?.ToString(), r.Metric ?? 0,
        r.NextHops.Count == 0 ? null : [.. r.NextHops.Select(h => new NextHopSnapshot(h.LinkIndex, h.Gateway?.ToString()))]);

    static string Mac(PhysicalAddress mac) => string.Join(":", mac.GetAddressBytes().Select(b => b.ToString("x2")));

    static string StateName(NeighbourState state) =>
        state == NeighbourState.None ? "none" : Enum.GetValues<NeighbourState>().Where(s => s != 0 && state.HasFlag(s)).Max().ToString().ToLowerInvariant();

    /// <summary>Per network: its master and every subnet its attachments masquerade. null when the records cannot be read.</summary>
    static List<MasqueradeSnapshot>? ReadMasquerade(string stateDir)
    {
        try
        {
            // Read-only: a node with no records has no NAT of ours (Open would create the folder).
            if (!Directory.Exists(stateDir))
                return [];
            using var store = StateStore.Open(stateDir);
            return [.. store.EnumerateAttachments()
                .Where(a => a.MasqueradedSubnets.Count > 0)
                .GroupBy(a => (a.Network, a.Master))
                .Select(g => new MasqueradeSnapshot(g.Key.Network, g.Key.Master, [.. g.SelectMany(a => a.MasqueradedSubnets).Distinct().Order(StringComparer.Ordinal)]))
                .OrderBy(m => m.Network, StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or IpvlanCni.Cni.CniException)
        {
            return null;
        }
    }
}
