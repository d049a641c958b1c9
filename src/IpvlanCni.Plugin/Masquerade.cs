using System.Diagnostics;
using System.Globalization;
using System.Text;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>
/// SNAT for pod traffic that leaves the node through any interface but the master ("ipMasq"). Each network owns
/// one chain (iptables) or one table (nftables), replaced whole on every change, so adding is idempotent and
/// removing the network's last pod leaves no trace. Rules go to the tools on stdin or as separate arguments:
/// no shell ever sees request data.
/// </summary>
public abstract class Masquerade
{
    /// <summary>Makes the network's rules exactly these (all of the network's pod subnets).</summary>
    public abstract void Apply(string network, string master, IReadOnlyList<IpPrefix> subnets);
    public abstract void Remove(string network, IReadOnlyList<IpPrefix> subnets);
    /// <summary>The network's rules are in place for these subnets.</summary>
    public abstract bool IsApplied(string network, string master, IReadOnlyList<IpPrefix> subnets);

    /// <summary>A name from the network name: short enough for any backend, the same on every node.</summary>
    // FNV-1a (64 bit) in managed code, not SHA-256: .NET's SHA-256 loads libssl with dlopen, which a static
    // executable cannot do safely (a second libc in the process), and a chain name needs no cryptography.
    public static string ChainName(string network)
    {
        ulong hash = 14695981039346656037;
        foreach (byte b in Encoding.UTF8.GetBytes(network))
            hash = (hash ^ b) * 1099511628211;
        return "IPVLAN-CNI-" + (hash >> 16).ToString("X12", CultureInfo.InvariantCulture);
    }

    /// <summary>The name a record keeps, so DEL, CHECK and GC use the backend that holds the network's rules.</summary>
    public abstract string Backend { get; }

    public const string Nftables = "nftables";
    public const string IptablesLegacy = "iptables-legacy";
    public const string Iptables = "iptables";

    /// <summary>
    /// The backend a network's rules live in: the one its records name (a network is never split across backends),
    /// else the one the node proves it can run.
    /// </summary>
    public static Masquerade ForNetwork(string? recorded) => recorded switch
    {
        Nftables => new NftablesMasquerade(),
        IptablesLegacy => new IptablesMasquerade(IptablesLegacy, "ip6tables-legacy"),
        Iptables => new IptablesMasquerade(Iptables, "ip6tables"),
        _ => ForNode(),
    };

    /// <summary>
    /// The backend chosen by proof, not by a listing: nftables when a NAT chain with a masquerade rule can be created
    /// in both families (nft listing tables says nothing: a kernel may autoload nf_tables and still lack its ip
    /// family or the nat chain type), else the legacy iptables, else whatever iptables the node has.
    /// </summary>
    public static Masquerade ForNode()
    {
        if (Tools.Exists("nft"))
        {
            var probe = Tools.Run("nft", ["-f", "-"], NatProbe);
            if (probe.ExitCode == 0)
                return new NftablesMasquerade();
            if (!NotSupported(probe.Error))
                throw new CniException(CniErrorCode.NatFailed, $"ipMasq: creating a NAT chain with nft failed ({probe.ExitCode}): {probe.Error}");
        }
        if (Tools.Exists("iptables-legacy"))
            return new IptablesMasquerade(IptablesLegacy, "ip6tables-legacy");
        if (Tools.Exists("iptables"))
            return new IptablesMasquerade(Iptables, "ip6tables");
        throw new CniException(CniErrorCode.NatFailed, "ipMasq: the node's nftables cannot create a NAT chain and iptables is not installed");
    }

    // One transaction that creates and deletes the table: it proves the capability and leaves nothing behind, whatever
    // the outcome.
    const string NatProbe =
        "add table ip ipvlan_cni_probe\nadd chain ip ipvlan_cni_probe p { type nat hook postrouting priority srcnat; }\n" +
        "add rule ip ipvlan_cni_probe p masquerade\ndelete table ip ipvlan_cni_probe\n" +
        "add table ip6 ipvlan_cni_probe\nadd chain ip6 ipvlan_cni_probe p { type nat hook postrouting priority srcnat; }\n" +
        "add rule ip6 ipvlan_cni_probe p masquerade\ndelete table ip6 ipvlan_cni_probe\n";

    // What the kernel says when a family, the nat chain type or nf_tables itself is missing: EOPNOTSUPP, ENOENT
    // (chain type not found), EAFNOSUPPORT / EPROTONOSUPPORT (no nfnetlink).
    static bool NotSupported(string error) =>
        error.Contains("not supported", StringComparison.OrdinalIgnoreCase)
        || error.Contains("No such file or directory", StringComparison.Ordinal);
}

sealed class IptablesMasquerade(string iptables, string ip6tables) : Masquerade
{
    public override string Backend => iptables;

    public override void Apply(string network, string master, IReadOnlyList<IpPrefix> subnets)
    {
        string chain = ChainName(network);
        foreach (var family in subnets.GroupBy(s => s.IsIPv4))
        {
            string tool = family.Key ? iptables : ip6tables;
            var script = new StringBuilder();
            script.Append("*nat\n");
            script.Append($":{chain} - [0:0]\n"); // with --noflush, declaring an existing chain flushes it
            script.Append($"-A {chain} -o {master} -j RETURN\n");
            foreach (var subnet in family)
                script.Append($"-A {chain} -d {subnet.Network} -j RETURN\n");
            script.Append($"-A {chain} -j MASQUERADE\n");
            script.Append("COMMIT\n");
            Tools.Check(Tools.Run(tool + "-restore", ["--noflush", "--wait"], script.ToString()), "ipMasq");
            foreach (var subnet in family)
                if (Tools.Run(tool, ["-w", "-t", "nat", "-C", .. Jump(network, chain, subnet)], null).ExitCode != 0)
                    Tools.Check(Tools.Run(tool, ["-w", "-t", "nat", "-A", .. Jump(network, chain, subnet)], null), "ipMasq");
        }
    }

    public override void Remove(string network, IReadOnlyList<IpPrefix> subnets)
    {
        string chain = ChainName(network);
        foreach (bool v4 in new[] { true, false })
        {
            string tool = v4 ? iptables : ip6tables;
            if (!Tools.Exists(tool))
                continue;
            foreach (var subnet in subnets.Where(s => s.IsIPv4 == v4))
                while (Tools.Run(tool, ["-w", "-t", "nat", "-D", .. Jump(network, chain, subnet)], null).ExitCode == 0)
                {
                }
            if (Tools.Run(tool, ["-w", "-t", "nat", "-F", chain], null).ExitCode == 0)
                Tools.Check(Tools.Run(tool, ["-w", "-t", "nat", "-X", chain], null), "ipMasq");
        }
    }

    public override bool IsApplied(string network, string master, IReadOnlyList<IpPrefix> subnets)
    {
        string chain = ChainName(network);
        return subnets.All(subnet =>
        {
            string tool = subnet.IsIPv4 ? iptables : ip6tables;
            return Tools.Run(tool, ["-w", "-t", "nat", "-C", .. Jump(network, chain, subnet)], null).ExitCode == 0
                && Tools.Run(tool, ["-w", "-t", "nat", "-C", chain, "-j", "MASQUERADE"], null).ExitCode == 0;
        });
    }

    static string[] Jump(string network, string chain, IpPrefix subnet) =>
        ["POSTROUTING", "-s", subnet.Network.ToString(), "-m", "comment", "--comment", $"ipvlan-cni: {network}", "-j", chain];
}

/// <summary>
/// The same rules as the iptables chain, one table per family: pod traffic out of the master, or to any of the
/// network's subnets, is left alone; the rest is masqueraded.
/// </summary>
sealed class NftablesMasquerade : Masquerade
{
    public override string Backend => Nftables;

    static readonly (string Family, bool IsIPv4)[] Families = [("ip", true), ("ip6", false)];

    static string Table(string network) => ChainName(network).ToLowerInvariant().Replace('-', '_');

    static List<string> Subnets(IReadOnlyList<IpPrefix> subnets, bool ipv4) =>
        [.. subnets.Where(s => s.IsIPv4 == ipv4).Select(s => s.Network.ToString()).Distinct()];

    public override void Apply(string network, string master, IReadOnlyList<IpPrefix> subnets)
    {
        string table = Table(network);
        var script = new StringBuilder();
        foreach (var (family, ipv4) in Families)
        {
            // add + delete (+ define) in one transaction: the table is replaced atomically, whatever was there, and
            // a family the network no longer has loses its table.
            script.Append($"add table {family} {table}\ndelete table {family} {table}\n");
            var own = Subnets(subnets, ipv4);
            if (own.Count == 0)
                continue;
            string set = $"{{ {string.Join(", ", own)} }}";
            script.Append($"table {family} {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n");
            script.Append($"    {family} saddr != {set} return\n");
            script.Append($"    oifname \"{master}\" return\n");
            script.Append($"    {family} daddr {set} return\n");
            script.Append("    masquerade\n  }\n}\n");
        }
        Tools.Check(Tools.Run("nft", ["-f", "-"], script.ToString()), "ipMasq");
    }

    public override void Remove(string network, IReadOnlyList<IpPrefix> subnets)
    {
        string table = Table(network);
        var script = string.Concat(Families.Select(f => $"add table {f.Family} {table}\ndelete table {f.Family} {table}\n"));
        Tools.Check(Tools.Run("nft", ["-f", "-"], script), "ipMasq");
    }

    /// <summary>Each family's chain exists, masquerades, and names every subnet (a flushed chain does not count).</summary>
    public override bool IsApplied(string network, string master, IReadOnlyList<IpPrefix> subnets) =>
        Families.Where(f => Subnets(subnets, f.IsIPv4).Count > 0).All(f =>
        {
            var listed = Tools.Run("nft", ["list", "chain", f.Family, Table(network), "postrouting"], null);
            return listed.ExitCode == 0 && listed.Output.Contains("masquerade", StringComparison.Ordinal)
                && listed.Output.Contains($"oifname \"{master}\"", StringComparison.Ordinal)
                && Subnets(subnets, f.IsIPv4).All(s => listed.Output.Contains(s, StringComparison.Ordinal));
        });
}

/// <summary>Runs the node's netfilter tools: arguments as a list, the ruleset on stdin, never a shell.</summary>
static class Tools
{
    static readonly string[] SearchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

    public static bool Exists(string name) => Locate(name) is not null;

    static string? Locate(string name) =>
        SearchPath.Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    public sealed record Outcome(string Command, int ExitCode, string Output, string Error);

    /// <summary>How long one tool run may take before it is killed (the configuration's timeouts.nat).</summary>
    public static TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public static Outcome Run(string name, IReadOnlyList<string> arguments, string? stdin)
    {
        string path = Locate(name) ?? throw new CniException(CniErrorCode.NatFailed, $"ipMasq: {name} is not installed on the node");
        try
        {
            var outcome = ChildProcess.Run(path, arguments, null, stdin is null ? default : Encoding.UTF8.GetBytes(stdin), Timeout);
            return new Outcome($"{name} {string.Join(' ', arguments)}", outcome.ExitCode, Encoding.UTF8.GetString(outcome.Output), outcome.Error);
        }
        catch (ChildProcessTimeoutException e)
        {
            throw new CniException(CniErrorCode.NatFailed, $"ipMasq: {e.Message}");
        }
    }

    public static void Check(Outcome outcome, string field)
    {
        if (outcome.ExitCode != 0)
            throw new CniException(CniErrorCode.NatFailed, $"{field}: {outcome.Command} failed ({outcome.ExitCode}): {outcome.Error}");
    }
}
