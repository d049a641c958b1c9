using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using IpvlanCni.Explain;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;
using Xunit.Abstractions;
using NodeSnapshot = IpvlanCni.Explain.NodeSnapshot;
using Trace = IpvlanCni.Explain.Trace;

namespace IpvlanCni.Kernel.Tests.Explain;

/// <summary>
/// `explain` against real packets: for every cell of the demo's reachability matrix and for pairs drawn from
/// seeded random topologies, the model's verdict on the live node's snapshot equals what a real ping measures.
/// Any disagreement fails with both the explanation and ping's output.
/// </summary>
public sealed class ExplainAgreementTests(ITestOutputHelper output) : KernelTest
{
    /// <summary>A question for the model and for ping: from a pod (or the node, null) to an address.</summary>
    sealed record Pair(string Label, NetNamespace? From, IPAddress To);

    sealed record Answer(Pair Pair, Trace Trace, bool Measured)
    {
        public bool Agrees => (Trace.Verdict == Verdict.Reachable) == Measured && Trace.Verdict != Verdict.Unknown;
        public override string ToString() =>
            $"{Pair.Label}: explain says {Trace.VerdictName}, ping {(Measured ? "got a reply" : "got none")}\n{Trace.ToText()}";
    }

    [Fact]
    public void Every_cell_of_the_demo_matrix_agrees_with_ping()
    {
        var clock = Stopwatch.StartNew();
        using var lab = new Lab(Layout.DesignNote);
        UseLegacyNat(lab);
        var answers = new List<Answer>();
        foreach (var segment in lab.Layout.Segments)
        {
            foreach (var group in Rows.All.GroupBy(r => r.Setup))
            {
                using var deployment = new Deployment(lab, segment, group.Key, secondNetwork: segment.Mode != IpvlanMode.L2);
                var snapshot = SnapshotReader.Read(lab.Node, lab.StateDir);
                Record(lab, snapshot, $"{segment.ModeName}-{group.Key.Key}");
                foreach (var row in group)
                    foreach (var family in Enum.GetValues<Family>())
                    {
                        if (row.Expected(segment.Mode, family) is null)
                            continue;
                        var pair = PairOf(row, deployment, family);
                        var trace = Explainer.Explain(snapshot, Id(snapshot, pair.From), pair.To);
                        AssertReadingAsNeededAgrees(lab, pair);
                        // The row's own probe (ping, or the TCP connection for the TCP row), as the demo measures it.
                        answers.Add(new Answer(pair with { Label = $"{row} in {segment.ModeName} {family}" }, trace, row.Probe(deployment, family)));
                    }
            }
        }
        Report(answers, clock);
        Assert.Equal(52, answers.Count); // every measured cell of the README's matrix
    }

    [Fact]
    public void Pairs_from_random_topologies_agree_with_ping()
    {
        var clock = Stopwatch.StartNew();
        var random = new Random(20261202);
        var answers = new List<Answer>();
        for (int topology = 0; topology < 5; topology++)
        {
            var layout = RandomLayout(random, topology);
            using var lab = new Lab(layout);
            UseLegacyNat(lab);
            var deployments = new List<Deployment>();
            try
            {
                var setups = new List<string>();
                foreach (var segment in layout.Segments)
                {
                    var setup = RandomSetup(random, segment);
                    setups.Add($"{segment.Master} {segment.ModeName} {setup.Label}");
                    deployments.Add(new Deployment(lab, segment, setup, secondNetwork: segment.Mode != IpvlanMode.L2 && random.Next(2) == 0));
                }
                output.WriteLine($"topology {topology}: node IP on {(layout.DefaultRouteOnMaster ? layout.Segments[0].Master : "ens3")}; {string.Join("; ", setups)}");
                var snapshot = SnapshotReader.Read(lab.Node, lab.StateDir);
                var pairs = Sample(random, AllPairs(lab, deployments), 42);
                var traces = pairs.Select(p => Explainer.Explain(snapshot, Id(snapshot, p.From), p.To)).ToList();
                foreach (var pair in pairs)
                    AssertReadingAsNeededAgrees(lab, pair);
                var measured = PingAll(lab, pairs);
                answers.AddRange(pairs.Select((p, i) => new Answer(p, traces[i], measured[i])));
            }
            finally
            {
                foreach (var deployment in Enumerable.Reverse(deployments))
                    deployment.Dispose();
            }
        }
        Report(answers, clock);
        Assert.True(answers.Count >= 200, $"only {answers.Count} pairs");
    }

    /// <summary>
    /// The deliberately unknowable case: a NIC whose other end is in a namespace nobody can find (no /run/netns name,
    /// no process): the model cannot see past it and says so, whatever ping measures.
    /// </summary>
    [Fact]
    public void A_destination_beyond_a_nic_the_snapshot_cannot_see_is_unknown()
    {
        using var lab = new Lab(Layout.DesignNote);
        string hidden = UniqueName("hid");
        using var outside = NetNamespace.CreateNamed(hidden);
        lab.NodeClient.CreateLink(new VethLinkSpec("ens20", "eth0") { PeerNamespace = outside });
        int ens20 = lab.NodeClient.GetLink("ens20").Index;
        lab.NodeClient.ChangeLink(ens20, new LinkChange { Up = true });
        lab.NodeClient.AddAddress(new AddressInfo(ens20, IpPrefix.Parse("192.168.20.1/24")));
        NetNamespace.DeleteNamed(hidden); // only our descriptor keeps it alive now

        var trace = ExplainCommand.Explain(lab.Node, lab.StateDir, null, IPAddress.Parse("192.168.20.254"));
        output.WriteLine(trace.ToText());
        Assert.Equal(Verdict.Unknown, trace.Verdict);
        Assert.Contains("beyond ens20", trace.Cause);
    }

    /// <summary>
    /// The command reads the node as the walk needs it (LiveNode: every namespace's links and addresses, the routing
    /// of the namespaces the packets cross, NAT records only at the node's output): its answer, word for word, is
    /// the one over the whole node read at once (the same namespaces first).
    /// </summary>
    static void AssertReadingAsNeededAgrees(Lab lab, Pair pair)
    {
        var whole = pair.From is null ? SnapshotReader.Read(lab.Node, lab.StateDir) : SnapshotReader.Read(lab.Node, lab.StateDir, pair.From.Path);
        string expected = Explainer.Explain(whole, Id(whole, pair.From), pair.To).ToText();
        Assert.Equal(expected, ExplainCommand.Explain(lab.Node, lab.StateDir, pair.From, pair.To).ToText());
    }

    /// <summary>
    /// With IPVLANCNI_RECORD_SNAPSHOTS=dir, each deployment's snapshot is written there (the lab's random name made
    /// "demo"), for the host tests' replayed snapshots (tests/IpvlanCni.Explain.Tests/Snapshots).
    /// </summary>
    static void Record(Lab lab, NodeSnapshot snapshot, string name)
    {
        if (Environment.GetEnvironmentVariable("IPVLANCNI_RECORD_SNAPSHOTS") is not { Length: > 0 } dir)
            return;
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, $"{name}.json"), snapshot.ToJson().Replace(lab.Name, "demo", StringComparison.Ordinal));
    }

    /// <summary>
    /// ipMasq picks legacy iptables when the node's legacy nat table is in use: listing it creates it, so these tests
    /// do not depend on whether this machine's nft can load nf_tables in the sandbox (NAT backends have their own tests).
    /// </summary>
    static void UseLegacyNat(Lab lab)
    {
        foreach (string tool in new[] { "iptables-legacy", "ip6tables-legacy" })
            Programs.Run(lab.Node, Programs.Locate(tool), ["-w", "-t", "nat", "-S"]);
    }

    static Pair PairOf(Row row, Deployment d, Family family)
    {
        var node = d.Lab.NodePrimaryAddress(family).Address;
        if (row == Rows.PodToPodSameSubnet)
            return new("", d.A.Namespace, d.B.Address(family));
        if (row == Rows.PodToPodOtherSubnet)
            return new("", d.A.Namespace, d.C!.Address(family));
        if (row == Rows.PodToUnderlayPeer)
            return new("", d.A.Namespace, d.Segment.PeerAddress(family).Address);
        if (row == Rows.NodeToPodWithoutHostAccess || row == Rows.NodeToPodWithHostAccess)
            return new("", null, d.A.Address(family));
        if (row == Rows.PodBehindNodeWithSnat)
            return new("", d.A.Namespace, Lab.ManagementPeerAddress(family).Address);
        if (row == Rows.PodToNodeWithoutHostAccess || row == Rows.PodToNodeWithHostAccess || row == Rows.PodToNodeTcp)
            return new("", d.A.Namespace, node);
        throw new InvalidOperationException($"no explain question for row {row}");
    }

    static string Id(NodeSnapshot snapshot, NetNamespace? ns) => ns is null ? snapshot.Node
        : snapshot.Namespaces.First(n => n.Device == ns.Device && n.Inode == ns.Inode).Id;

    /// <summary>2 or 3 masters (VLANs with random ids, so random subnets), random modes, the node's IP on ens3 or on the first master.</summary>
    static Layout RandomLayout(Random random, int index)
    {
        var vlans = Enumerable.Range(101, 150).OrderBy(_ => random.Next()).Take(2 + random.Next(2)).ToList();
        var segments = vlans.Select(vlan =>
        {
            var mode = (IpvlanMode)random.Next(3);
            return new Segment(mode, (ushort)vlan, NodeOwnsMaster: mode != IpvlanMode.L2 || random.Next(2) == 0);
        }).ToList();
        bool onMaster = segments[0].NodeOwnsMaster && random.Next(3) == 0;
        return new Layout($"random {index}", segments, onMaster);
    }

    /// <summary>Plain with a random flag, host access, or egress through the node with ipMasq (both need bridge).</summary>
    static Setup RandomSetup(Random random, Segment segment)
    {
        string vlan = segment.Vlan.ToString();
        return random.Next(5) switch
        {
            0 => new Setup($"priv{vlan}", "\"flag\": \"private\"", c => c["flag"] = "private"),
            1 => new Setup($"vepa{vlan}", "\"flag\": \"vepa\"", c => c["flag"] = "vepa"),
            2 => new Setup($"host{vlan}", Setup.HostAccess.Label, Setup.HostAccess.Configure),
            3 => new Setup($"egr{vlan}", Setup.EgressThroughNode.Label, Setup.EgressThroughNode.Configure),
            _ => new Setup($"plain{vlan}", Setup.Plain.Label, Setup.Plain.Configure),
        };
    }

    /// <summary>Every pod and the node to every pod address, the node's addresses, every business peer and the management host.</summary>
    static List<Pair> AllPairs(Lab lab, List<Deployment> deployments)
    {
        var pods = deployments.SelectMany(d => new[] { ("a", d, d.A), ("b", d, d.B), ("c", d, d.C) })
            .Where(p => p.Item3 is not null).Select(p => (Name: $"{p.Item2.Segment.Master}/{p.Item1}", Pod: p.Item3!)).ToList();
        var pairs = new List<Pair>();
        foreach (var family in Enum.GetValues<Family>())
        {
            var targets = new List<(string Name, IPAddress Address)>();
            targets.AddRange(pods.Select(p => ($"pod {p.Name}", p.Pod.Address(family))));
            targets.Add(("node", lab.NodePrimaryAddress(family).Address));
            foreach (var segment in lab.Layout.Segments)
            {
                targets.Add(($"peer on {segment.Master}", segment.PeerAddress(family).Address));
                if (segment.NodeAddress(family) is { } address)
                    targets.Add(($"node on {segment.Master}", address.Address));
            }
            targets.Add(("management host", Lab.ManagementPeerAddress(family).Address));
            var sources = pods.Select(p => (Name: $"pod {p.Name}", Ns: (NetNamespace?)p.Pod.Namespace)).Append(("node", null));
            foreach (var source in sources)
                foreach (var target in targets.Distinct())
                    if (source.Name != target.Name && !(source.Ns is null && target.Name.StartsWith("node", StringComparison.Ordinal)))
                        pairs.Add(new Pair($"{source.Name} -> {target.Name} {target.Address}", source.Ns, target.Address));
        }
        return pairs;
    }

    static List<Pair> Sample(Random random, List<Pair> pairs, int count) =>
        [.. pairs.OrderBy(_ => random.Next()).Take(count)];

    /// <summary>One ping per pair, 21 at a time (an unanswered one costs its whole deadline): true when a reply came.</summary>
    static List<bool> PingAll(Lab lab, List<Pair> pairs)
    {
        string ping = Programs.Locate("ping");
        var results = new List<bool>();
        foreach (var batch in pairs.Chunk(21))
        {
            var running = batch.Select(p => Programs.Start(p.From ?? lab.Node, ping,
                [p.To.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4", "-c1", "-w2", "-i0.1", "-n", "-q", p.To.ToString()])).ToList();
            foreach (var process in running)
            {
                using (process)
                {
                    process.StandardInput.Close();
                    if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
                        process.Kill();
                    process.WaitForExit();
                    results.Add(process.ExitCode == 0);
                }
            }
        }
        return results;
    }

    void Report(List<Answer> answers, Stopwatch clock)
    {
        var wrong = answers.Where(a => !a.Agrees).ToList();
        var verdicts = answers.GroupBy(a => a.Trace.VerdictName).Select(g => $"{g.Count()} {g.Key}");
        output.WriteLine($"{answers.Count} pairs ({string.Join(", ", verdicts)}), {wrong.Count} disagreements, {clock.Elapsed.TotalSeconds:F0} s");
        foreach (var answer in wrong)
            output.WriteLine($"DISAGREES: {answer}");
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {answers.Count} disagree:\n" + string.Join("\n", wrong.Take(12)));
    }
}
