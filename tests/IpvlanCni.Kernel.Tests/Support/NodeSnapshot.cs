using System.Net.Sockets;
using System.Security.Cryptography;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Support;

/// <summary>
/// Everything a plugin call may change on a node, as comparable lines: links, addresses, routes (all tables) and
/// permanent neighbours of the node namespace and of any pod namespaces asked for, the node's NAT rules (the nat
/// tables of iptables-legacy and ip6tables-legacy, counters dropped), and the entries under the given folders (type,
/// mode, symlink target, content hash). Two snapshots are equal when nothing changed.
/// <code>
/// var before = NodeSnapshot.Take(cni, pod);                   // node, pod, the plugin's state and IPAM folders
/// cni.Add(hostileConfig, pod, "c1");
/// NodeSnapshot.Take(cni, pod).AssertSameAs(before, "hostile ADD");
/// </code>
/// Reading the nat tables creates them in the namespace, so a snapshot taken before the first ADD already has them.
/// </summary>
public sealed record NodeSnapshot(
    IReadOnlyList<string> Links,
    IReadOnlyList<string> Addresses,
    IReadOnlyList<string> Routes,
    IReadOnlyList<string> Neighbours,
    IReadOnlyList<string> NatRules,
    IReadOnlyList<string> Files)
{
    const string NodeLabel = "node";

    /// <summary>The node namespace and every entry under these folders (absent ones say so).</summary>
    public static NodeSnapshot Take(TestNode node, params string[] folders) => Take(node.Namespace, new SnapshotFolders(folders));

    public static NodeSnapshot Take(TestNode node, SnapshotFolders folders) => Take(node.Namespace, folders);

    /// <summary>The node, these pods, and the plugin's state and IPAM folders as <see cref="SnapshotFolders.PluginState"/> sees them.</summary>
    public static NodeSnapshot Take(PluginRunner cni, params TestPod[] pods) =>
        Take(cni.Node.Namespace, SnapshotFolders.PluginState(cni.StateDir, cni.DataDir, cni.NodeStateDir), [.. pods.Select(p => p.Namespace)]);

    /// <summary>The lab's node and its plugin folders as <see cref="SnapshotFolders.PluginState"/> sees them.</summary>
    public static NodeSnapshot Take(Lab lab) => Take(lab.Node, SnapshotFolders.PluginState(lab.StateDir, lab.IpamDir));

    /// <param name="pods">Namespaces listed besides the node's, each under its name in /run/netns.</param>
    public static NodeSnapshot Take(NetNamespace node, SnapshotFolders folders, params NetNamespace[] pods)
    {
        var parts = new[] { (NodeLabel, node) }.Concat(pods.Select(p => (Path.GetFileName(p.Path), p)))
            .Select(n => Describe(n.Item1, n.Item2)).ToList();
        return new NodeSnapshot(
            [.. parts.SelectMany(p => p.Links).Order()],
            [.. parts.SelectMany(p => p.Addresses).Order()],
            [.. parts.SelectMany(p => p.Routes).Order()],
            [.. parts.SelectMany(p => p.Neighbours).Order()],
            [.. ReadNatRules(node, AddressFamily.InterNetwork).Select(l => $"ipv4 {l}"),
             .. ReadNatRules(node, AddressFamily.InterNetworkV6).Select(l => $"ipv6 {l}")],
            [.. ListFolders(folders).Order()]);
    }

    /// <summary>Every line of every part, each starting with its part ("link", "nat", "file", ...).</summary>
    public IEnumerable<string> Lines => Parts.SelectMany(p => p.Lines.Select(line => $"{p.Name} {line}"));

    IEnumerable<(string Name, IReadOnlyList<string> Lines)> Parts =>
    [
        ("link", Links), ("address", Addresses), ("route", Routes), ("neighbour", Neighbours), ("nat", NatRules), ("file", Files),
    ];

    /// <summary>"part gone: line" and "part added: line" for everything that differs from <paramref name="before"/>.</summary>
    public List<string> DifferencesFrom(NodeSnapshot before)
    {
        var differences = new List<string>();
        foreach (var ((part, was), (_, now)) in before.Parts.Zip(Parts))
        {
            differences.AddRange(was.Except(now).Select(gone => $"{part} gone: {gone}"));
            differences.AddRange(now.Except(was).Select(added => $"{part} added: {added}"));
        }
        return differences;
    }

    /// <summary>Fails with the lines that differ, per part.</summary>
    public void AssertSameAs(NodeSnapshot before, string what)
    {
        var differences = DifferencesFrom(before);
        Assert.True(differences.Count == 0, $"{what} changed the node:\n{string.Join("\n", differences)}");
    }

    static (List<string> Links, List<string> Addresses, List<string> Routes, List<string> Neighbours) Describe(string label, NetNamespace ns)
    {
        using var client = RouteClient.OpenIn(ns);
        WaitForDuplicateAddressDetection(label, client);
        var links = client.ListLinks();
        string Name(int index) => index == 0 ? "-" : links.FirstOrDefault(l => l.Index == index)?.Name ?? $"#{index}";
        return (
            [.. links.Select(l => $"{label} {l.Name} kind={l.Kind} index={l.Index} parent={Name(l.ParentIndex)} up={l.IsUp} noarp={l.NoArp} " +
                $"mtu={l.Mtu} mac={l.MacAddress} mode={l.IpvlanMode} flag={l.IpvlanFlag} vlan={l.VlanId}")],
            [.. client.ListAddresses().Select(a => $"{label} {a.Prefix} dev={Name(a.LinkIndex)} scope={a.Scope} flags={a.Flags & ~AddressFlags.Tentative}")],
            [.. client.ListRoutes(AddressFamily.Unspecified, table: 0).Select(r =>
                $"{label} table={r.Table} {r.Destination} via={r.Gateway} dev={Name(r.LinkIndex)} scope={r.Scope} type={r.Type} proto={r.Protocol} " +
                $"metric={r.Metric} src={r.PreferredSource} nexthops={string.Join(",", r.NextHops.Select(h => $"{h.Gateway}@{Name(h.LinkIndex)}"))}")],
            // Only entries someone configured: the kernel learns and forgets the others on its own.
            [.. client.ListNeighbours().Where(n => n.State.HasFlag(NeighbourState.Permanent))
                .Select(n => $"{label} {n.Address} dev={Name(n.LinkIndex)} mac={n.MacAddress}")]);
    }

    /// <summary>
    /// Waits until no IPv6 address is tentative: the kernel adds an address's local route only once duplicate address
    /// detection is over (about a second after a link comes up), so a snapshot taken during it would differ from a
    /// later one though nothing was changed.
    /// </summary>
    static void WaitForDuplicateAddressDetection(string label, RouteClient client)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var tentative = client.ListAddresses(AddressFamily.InterNetworkV6)
                .Where(a => (a.Flags & (AddressFlags.Tentative | AddressFlags.DadFailed)) == AddressFlags.Tentative).ToList();
            if (tentative.Count == 0)
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{label}: still tentative after 5 s: {string.Join(", ", tentative.Select(a => a.Prefix))}");
            Thread.Sleep(50);
        }
    }

    /// <summary>A family's nat table, rules and chains, without comments and counters (iptables-legacy-save -t nat).</summary>
    public static IReadOnlyList<string> ReadNatRules(NetNamespace ns, AddressFamily family)
    {
        string save = Programs.Locate(family == AddressFamily.InterNetworkV6 ? "ip6tables-legacy-save" : "iptables-legacy-save");
        var result = Programs.Run(ns, save, ["-t", "nat"]);
        Assert.True(result.Succeeded, $"{save} failed: {result}");
        return [.. result.StdOut.Split('\n')
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.StartsWith(':') ? line[..line.LastIndexOf(' ')] : line)]; // ":CHAIN POLICY [pkts:bytes]"
    }

    /// <summary>"path type mode [-> target | sha256]" for each folder and everything below it, never following links.</summary>
    public static List<string> ListFolders(SnapshotFolders folders)
    {
        var entries = new List<string>();
        void Visit(FileSystemInfo entry)
        {
            string mode = Convert.ToString((int)entry.UnixFileMode, 8);
            if (entry.LinkTarget is { } target)
            {
                if (!folders.Ignores(entry.Name))
                    entries.Add($"{entry.FullName} link {mode} -> {target}");
            }
            else if (entry is DirectoryInfo dir)
            {
                if (folders.ListDirectories)
                    entries.Add($"{entry.FullName} dir {mode}");
                foreach (var child in dir.EnumerateFileSystemInfos())
                    Visit(child);
            }
            else if (folders.Ignores(entry.Name))
                return;
            else if (IpvlanCni.Interop.Libc.TryGetFileType(entry.FullName) is not IpvlanCni.Interop.Libc.S_IFREG)
                entries.Add($"{entry.FullName} special {mode}"); // a FIFO or device: typed, never opened (it could block)
            else
                entries.Add($"{entry.FullName} file {mode} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(entry.FullName)))[..16]}");
        }
        foreach (string folder in folders.Roots)
        {
            bool isLink = new FileInfo(folder).LinkTarget is not null;
            if (!Path.Exists(folder) && !isLink)
            {
                if (folders.ListDirectories)
                    entries.Add($"{folder} absent");
            }
            else
                Visit(Directory.Exists(folder) && !isLink ? new DirectoryInfo(folder) : new FileInfo(folder));
        }
        return entries;
    }
}

/// <summary>The folders a <see cref="NodeSnapshot"/> lists, and what in them it leaves out.</summary>
public sealed record SnapshotFolders(params string[] Roots)
{
    /// <summary>File (and symlink) names left out: exact, or with a trailing '*' any name that starts so.</summary>
    public IReadOnlyList<string> IgnoredNames { get; init; } = [];

    /// <summary>Directories (and absent roots) count too; false lists only what is in them.</summary>
    public bool ListDirectories { get; init; } = true;

    public bool Ignores(string name) => IgnoredNames.Any(pattern => pattern.EndsWith('*')
        ? name.StartsWith(pattern[..^1], StringComparison.Ordinal)
        : name == pattern);

    /// <summary>
    /// A plugin's state and IPAM folders as they hold state: records, reservations, temporaries. Left out are the
    /// empty flock targets (the first call makes them, they hold nothing), host-local's allocation cursor
    /// last_reserved_ip.N (it moves on purpose and stays after DEL, as in the reference) and the folders themselves.
    /// </summary>
    public static SnapshotFolders PluginState(string stateDir, string dataDir, params string[] more) =>
        new([stateDir, dataDir, .. more]) { IgnoredNames = ["lock", "last_reserved_ip.*"], ListDirectories = false };
}
