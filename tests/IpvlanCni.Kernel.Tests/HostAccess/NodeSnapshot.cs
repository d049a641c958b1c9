using System.Text.RegularExpressions;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.HostAccess;

/// <summary>
/// What the plugin may change on a node, as text that compares exactly: links, addresses and routes (every table)
/// read with RouteClient, and the nat tables as iptables-legacy-save prints them (comments and counters dropped).
/// Reading the nat tables creates them in the namespace, so a snapshot taken before the first ADD already has them.
/// </summary>
static partial class NodeSnapshot
{
    public static string Take(Lab lab)
    {
        var client = lab.NodeClient;
        var links = client.ListLinks();
        string Name(int index) => links.FirstOrDefault(l => l.Index == index)?.Name ?? $"#{index}";
        var lines = new List<string>();
        lines.AddRange(links.Select(l => $"link {l.Name} kind={l.Kind} parent={(l.ParentIndex == 0 ? "-" : Name(l.ParentIndex))} up={l.IsUp} noarp={l.NoArp} mtu={l.Mtu} mac={l.MacAddress}"));
        lines.AddRange(client.ListAddresses().Select(a => $"address {Name(a.LinkIndex)} {a.Prefix} scope={a.Scope}"));
        lines.AddRange(client.ListRoutes(table: 0).Select(r =>
            $"route table={r.Table} {r.Destination} via={r.Gateway} dev={Name(r.LinkIndex)} scope={r.Scope} type={r.Type} proto={r.Protocol} metric={r.Metric} src={r.PreferredSource}"));
        lines.Sort(StringComparer.Ordinal);
        lines.Add(Nat(lab, "iptables-legacy-save"));
        lines.Add(Nat(lab, "ip6tables-legacy-save"));
        return string.Join("\n", lines);
    }

    public static string Nat(Lab lab, string save)
    {
        var result = Programs.Run(lab.Node, $"/usr/sbin/{save}", ["-t", "nat"]);
        Assert.True(result.Succeeded, $"{save}: {result}");
        var rules = result.StdOut.Split('\n').Where(l => !l.StartsWith('#') && l.Length > 0).Select(l => Counters().Replace(l, "[-]"));
        return $"{save}:\n{string.Join("\n", rules)}";
    }

    /// <summary>The lines of the nat table that mention a chain (its declaration, its rules, jumps to it).</summary>
    public static IReadOnlyList<string> NatLinesMentioning(Lab lab, string save, string chain) =>
        [.. Nat(lab, save).Split('\n').Where(l => l.Contains(chain, StringComparison.Ordinal))];

    [GeneratedRegex(@"\[\d+:\d+\]")]
    private static partial Regex Counters();
}
