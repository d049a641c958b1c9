using System.Net.Sockets;
using System.Security.Cryptography;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Support;

/// <summary>
/// Everything a plugin call may change on a node, as comparable text: links, addresses, routes (all tables) and
/// neighbours of the node namespace, its NAT rules (iptables-legacy-save -t nat, counters dropped), and every entry
/// under the given folders (type, mode, symlink target, content hash). Two snapshots are equal when nothing changed.
/// <code>
/// var before = NodeSnapshot.Take(node, cni.StateDir, cni.DataDir);
/// cni.Add(hostileConfig, pod, "c1");
/// NodeSnapshot.Take(node, cni.StateDir, cni.DataDir).AssertSameAs(before, "hostile ADD");
/// </code>
/// </summary>
public sealed record NodeSnapshot(
    IReadOnlyList<string> Links,
    IReadOnlyList<string> Addresses,
    IReadOnlyList<string> Routes,
    IReadOnlyList<string> Neighbours,
    IReadOnlyList<string> NatRules,
    IReadOnlyList<string> Files)
{
    public static NodeSnapshot Take(TestNode node, params string[] folders) => Take(node.Namespace, node.Client, folders);

    public static NodeSnapshot Take(NetNamespace ns, RouteClient client, params string[] folders) => new(
        [.. client.ListLinks().Select(l =>
            $"{l.Index} {l.Name} kind={l.Kind} parent={l.ParentIndex} mtu={l.Mtu} up={l.IsUp} noarp={l.NoArp} mode={l.IpvlanMode} flag={l.IpvlanFlag} vlan={l.VlanId}").Order()],
        [.. client.ListAddresses().Select(a => $"{a.LinkIndex} {a.Prefix} scope={a.Scope} flags={a.Flags & ~AddressFlags.Tentative}").Order()],
        [.. client.ListRoutes(AddressFamily.Unspecified, table: 0).Select(Describe).Order()],
        // Only entries someone configured: the kernel learns and forgets the others on its own.
        [.. client.ListNeighbours().Where(n => n.State.HasFlag(NeighbourState.Permanent)).Select(n => $"{n.LinkIndex} {n.Address} {n.MacAddress}").Order()],
        ReadNatRules(ns),
        [.. folders.SelectMany(Entries).Order()]);

    /// <summary>Reservation files, state records and the like: every non-directory entry under the folders.</summary>
    public int FileCount => Files.Count(f => !f.Contains(" dir "));

    /// <summary>Fails with the lines that differ, per part.</summary>
    public void AssertSameAs(NodeSnapshot before, string what)
    {
        var differences = new List<string>();
        void Compare(string part, IReadOnlyList<string> was, IReadOnlyList<string> now)
        {
            foreach (var gone in was.Except(now))
                differences.Add($"{part} gone: {gone}");
            foreach (var added in now.Except(was))
                differences.Add($"{part} added: {added}");
        }
        Compare("link", before.Links, Links);
        Compare("address", before.Addresses, Addresses);
        Compare("route", before.Routes, Routes);
        Compare("neighbour", before.Neighbours, Neighbours);
        Compare("nat", before.NatRules, NatRules);
        Compare("file", before.Files, Files);
        Assert.True(differences.Count == 0, $"{what} changed the node:\n{string.Join("\n", differences)}");
    }

    static string Describe(RouteInfo r) =>
        $"table={r.Table} {r.Destination} via={r.Gateway} dev={r.LinkIndex} scope={r.Scope} type={r.Type} proto={r.Protocol} metric={r.Metric} src={r.PreferredSource} " +
        string.Join(",", r.NextHops.Select(h => $"{h.Gateway}@{h.LinkIndex}"));

    /// <summary>The nat table's rules and chains without counters and comments; empty when iptables-legacy is missing.</summary>
    public static IReadOnlyList<string> ReadNatRules(NetNamespace ns)
    {
        string? save = new[] { "/usr/sbin/iptables-legacy-save", "/sbin/iptables-legacy-save" }.FirstOrDefault(File.Exists);
        if (save is null)
            throw new InvalidOperationException("iptables-legacy-save is not installed ('make deps' installs iptables)");
        var result = NamespaceProcess.Run(ns, save, ["-t", "nat"]);
        Assert.True(result.ExitCode == 0, $"iptables-legacy-save failed: {result}");
        return [.. result.StdOut.Split('\n')
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.StartsWith(':') ? line[..line.LastIndexOf(' ')] : line)]; // ":CHAIN POLICY [pkts:bytes]"
    }

    /// <summary>"path type mode [-> target | sha256]" for the folder itself and everything below it, never following links.</summary>
    static IEnumerable<string> Entries(string folder)
    {
        if (!Path.Exists(folder) && new FileInfo(folder).LinkTarget is null)
            return [$"{folder} absent"];
        var entries = new List<string>();
        void Visit(FileSystemInfo entry)
        {
            string mode = Convert.ToString((int)entry.UnixFileMode, 8);
            if (entry.LinkTarget is { } target)
                entries.Add($"{entry.FullName} link {mode} -> {target}");
            else if (entry is DirectoryInfo dir)
            {
                entries.Add($"{entry.FullName} dir {mode}");
                foreach (var child in dir.EnumerateFileSystemInfos())
                    Visit(child);
            }
            else
                entries.Add($"{entry.FullName} file {mode} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(entry.FullName)))[..16]}");
        }
        Visit(Directory.Exists(folder) && new DirectoryInfo(folder).LinkTarget is null ? new DirectoryInfo(folder) : new FileInfo(folder));
        return entries;
    }
}
