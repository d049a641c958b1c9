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
        var namespaces = new List<NamespaceSnapshot> { ReadNamespace(node, NodeId) };
        var seen = new HashSet<(ulong, ulong)> { (node.Device, node.Inode) };
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
            using (ns)
            {
                if (!seen.Add((ns.Device, ns.Inode)))
                    continue;
                try
                {
                    namespaces.Add(ReadNamespace(ns, path));
                }
                catch (Exception e) when (e is NamespaceException or NetlinkException)
                {
                    // A namespace that disappears while being read is not part of the node any more.
                }
            }
        }
        return new NodeSnapshot(NodeId, namespaces, ReadMasquerade(stateDir));
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

    static NamespaceSnapshot ReadNamespace(NetNamespace ns, string id)
    {
        // One thread in the namespace opens the socket and reads the forwarding switches (/proc/sys/net is the
        // reading thread's namespace); the socket stays bound there.
        var (transport, forward4, forward6) = ns.Run(() =>
            (NetlinkSocket.Open(), ReadSwitch("/proc/sys/net/ipv4/ip_forward"), ReadSwitch("/proc/sys/net/ipv6/conf/all/forwarding")));
        using var client = new RouteClient(transport);
        return new NamespaceSnapshot(id, ns.Device, ns.Inode, forward4, forward6,
            [.. client.ListLinks().Select(Link)],
            [.. client.ListAddresses().Select(a => new AddressSnapshot(a.LinkIndex, a.Prefix.ToString(),
                (a.Flags & (AddressFlags.Tentative | AddressFlags.DadFailed)) != 0))],
            [.. client.ListRoutes().Select(Route)],
            [.. client.ListNeighbours().Select(n => new NeighbourSnapshot(n.LinkIndex, n.Address.ToString(),
                n.MacAddress.GetAddressBytes().Length == 0 ? null : Mac(n.MacAddress), StateName(n.State)))]);
    }

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
            return [.. new StateStore(stateDir).EnumerateAttachments()
                .Where(a => a.MasqueradedSubnets.Count > 0)
                .GroupBy(a => (a.Network, a.Master))
                .Select(g => new MasqueradeSnapshot(g.Key.Network, g.Key.Master, [.. g.SelectMany(a => a.MasqueradedSubnets).Distinct().Order(StringComparer.Ordinal)]))
                .OrderBy(m => m.Network, StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
