using System.Diagnostics;
using IpvlanCni.Scenarios;

/// <summary>
/// Three nodes sharing one subnet through etcd: a one-member etcd on the wire, each node's own agent, two pods per
/// node on an "ipvlan-cni-ipam" network, a ping across nodes, and the operator's `ipam show` and `ipam check`.
/// Everything is started here and stopped by PID. A step that does not do what it should throws, in words.
/// </summary>
static class ClusterIpamDemo
{
    const string Network = "shared";

    public static void Run()
    {
        Console.WriteLine($"""

            Cluster IPAM: three nodes, each a namespace whose business NIC ens10 is a veth end on one bridge (node i holds
            10.77.0.i); etcd (one member) on the bridge at 10.77.0.254; each node runs its own `ipvlan-cni agent`. One
            network, "ipam": {"{"}"type": "ipvlan-cni-ipam", "ranges": 10.77.0.100-199, "blockSize": 4{"}"}, on every node.
            """);
        using var lab = new ClusterLab(nodes: 3);
        Console.WriteLine($"  etcd {lab.EtcdEndpoint} (pid {lab.Etcd!.Id}); agents: {string.Join(", ", lab.Nodes.Select(n => $"{n.Name} pid {n.Agent!.Id}"))}");

        var pods = new List<(ClusterNode Node, Pod Pod, string Id, System.Net.IPAddress Address)>();
        foreach (var node in lab.Nodes)
        {
            for (int i = 1; i <= 2; i++)
            {
                string id = $"{node.Name}-pod{i}";
                var pod = lab.AddPod(node);
                var clock = Stopwatch.StartNew();
                var added = node.Cni.Add(lab.Config(node, Network), pod, id);
                if (added.ExitCode != 0)
                    throw new InvalidOperationException($"ADD {id} on {node.Name} failed: {added.ErrorMessage} (exit {added.ExitCode}){Environment.NewLine}agent log:{Environment.NewLine}{node.AgentLogText}");
                var address = added.Addresses.Single();
                Console.WriteLine($"  ADD {id,-12} on {node.Name}: {address,-16} in {clock.ElapsedMilliseconds} ms");
                pods.Add((node, pod, id, address.Address));
            }
        }
        var duplicates = pods.GroupBy(p => p.Address).Where(g => g.Count() > 1).ToList();
        if (duplicates.Count > 0)
            throw new InvalidOperationException($"two pods got the same address: {string.Join(", ", duplicates.Select(g => $"{g.Key} ({string.Join(", ", g.Select(p => p.Id))})"))}");

        foreach (var (from, to) in new[] { (pods[0], pods[5]), (pods[3], pods[1]) })
        {
            bool reached = Programs.Ping(from.Pod.Namespace, to.Address, 3);
            Console.WriteLine($"  ping {from.Id} ({from.Address}) -> {to.Id} ({to.Address}) on another node: {(reached ? "yes" : "NO(!)")}");
            if (!reached)
                throw new InvalidOperationException($"{from.Id} on {from.Node.Name} could not ping {to.Id} on {to.Node.Name}");
        }

        var config = lab.Config(lab.Nodes[0], Network);
        foreach (var command in new[] { "show", "check" })
        {
            Console.WriteLine($"\n$ ipvlan-cni ipam {command} --config {Network}.conf      # run on {lab.Nodes[0].Name}");
            var result = lab.Operator(lab.Nodes[0], config, command);
            Console.Write(result.StdOut + result.StdErr);
            if (!result.Succeeded)
                throw new InvalidOperationException($"ipvlan-cni ipam {command} exited with {result.ExitCode}");
        }

        foreach (var p in pods)
        {
            var deleted = p.Node.Cni.Del(lab.Config(p.Node, Network), p.Pod, p.Id);
            if (deleted.ExitCode != 0)
                throw new InvalidOperationException($"DEL {p.Id} on {p.Node.Name} failed: {deleted.ErrorMessage}");
        }
        var after = lab.Operator(lab.Nodes[0], config, "check");
        if (!after.Succeeded || !after.StdOut.Contains(" 0 addresses", StringComparison.Ordinal))
            throw new InvalidOperationException($"after every DEL, ipam check says: {after.StdOut}{after.StdErr}");
        Console.WriteLine($"\n  DEL of all six pods; ipam check: {after.StdOut.Trim()}");
        Console.WriteLine("  stopping the agents and etcd by PID");
    }
}
