using System.Net.NetworkInformation;
using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Network;
using IpvlanCni.Plugin;

namespace IpvlanCni.Explain;

/// <summary>
/// Builds a <see cref="NodeSnapshot"/> from the live kernel through our netlink client: the node's namespace, every
/// namespace under /run/netns and every process's (/proc/*/ns/net), each once by (device, inode); and NAT from the
/// plugin's own records (which networks masquerade which subnets), never from parsing nft or iptables output.
/// Read-only: it changes nothing on the node.
/// </summary>
public static class SnapshotReader
{
    public const string NodeId = "node";

    /// <param name="node">The node's namespace (the caller's, for the CLI).</param>
    /// <param name="stateDir">The plugin's state folder (its records say which networks masquerade).</param>
    /// <param name="first">Namespace paths to read first, under these names (the one the question is about).</param>
    public static NodeSnapshot Read(NetNamespace node, string stateDir, params string[] first)
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
            var all = new List<(NetNamespace Ns, string Id)> { (node, NodeId) };
            all.AddRange(opened);
            // Two threads (the machine's cores) each visit half of the namespaces: enter one, open a netlink socket
            // there, read the forwarding switches (/proc/sys/net is the reading thread's namespace) and dump it.
            var halves = new[] { all.Where((_, i) => i % 2 == 0).ToList(), all.Where((_, i) => i % 2 == 1).ToList() };
            var read = new List<NamespaceSnapshot?>[2];
            var workers = halves.Select((half, h) => new Thread(() =>
                read[h] = NetNamespace.RunInEach([.. half.Select(n => n.Ns)], ns => Visit(ns, half.First(n => n.Ns == ns).Id)))).ToList();
            foreach (var worker in workers)
                worker.Start();
            foreach (var worker in workers)
                worker.Join();
            var namespaces = new List<NamespaceSnapshot>();
            for (int i = 0; i < all.Count; i++)
            {
                var snapshot = read[i % 2]?[i / 2];
                if (snapshot is not null)
                    namespaces.Add(snapshot);
                else if (i == 0)
                    throw new NamespaceException("cannot read the node's own namespace");
            }
            return new NodeSnapshot(NodeId, namespaces, ReadMasquerade(stateDir));
        }
        finally
        {
            foreach (var (ns, _) in opened)
                ns.Dispose();
        }
    }

    /// <summary>One namespace, read by a thread inside it; null when it went away meanwhile.</summary>
    static NamespaceSnapshot? Visit(NetNamespace ns, string id)
    {
        try
        {
            using var client = new RouteClient(NetlinkSocket.Open());
            return ReadNamespace(client, ns, id, ReadSwitch("/proc/sys/net/ipv4/ip_forward"), ReadSwitch("/proc/sys/net/ipv6/conf/all/forwarding"));
        }
        catch (Exception e) when (e is IOException or IpvlanCni.Interop.SystemCallException or NetlinkException)
        {
            return null;
        }
    }

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

    static NamespaceSnapshot ReadNamespace(RouteClient client, NetNamespace ns, string id, bool forward4, bool forward6) =>
        new(id, ns.Device, ns.Inode, forward4, forward6,
            [.. client.ListLinks().Select(Link)],
            [.. client.ListAddresses().Select(a => new AddressSnapshot(a.LinkIndex, a.Prefix.ToString(),
                (a.Flags & (AddressFlags.Tentative | AddressFlags.DadFailed)) != 0))],
            [.. client.ListRoutes().Select(Route)],
            [.. client.ListNeighbours().Select(n => new NeighbourSnapshot(n.LinkIndex, n.Address.ToString(),
                n.MacAddress.GetAddressBytes().Length == 0 ? null : Mac(n.MacAddress), StateName(n.State)))]);

    static bool ReadSwitch(string path) => File.Exists(path) && File.ReadAllText(path).Trim() == "1";

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
