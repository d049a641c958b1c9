using System.Diagnostics;
using System.Globalization;
using IpvlanCni.Bench;
using IpvlanCni.Network;

return Bench.Run();

namespace IpvlanCni.Bench
{
    /// <summary>
    /// `make bench`: ipvlan-cni against the reference (containernetworking-plugins' ipvlan + host-local) in one
    /// sandbox boot, on one dummy master, identical configurations. Prints a table and fails when a goal is missed.
    /// Sandbox only: it creates links in the namespace it runs in.
    /// </summary>
    static class Bench
    {
        public const string MasterName = "ens10";
        const string WorkDir = "/tmp/bench";
        const string ReferenceDir = "/usr/lib/cni";
        const int Sequential = 30;      // ADDs (then DELs) one after another per plugin, the plugins taking turns
        const int Concurrent = 50;      // ADDs started at once
        const int ConcurrentRounds = 2; // ... per plugin, alternating; the mean is reported
        const int StartupRuns = 30;
        const int MemoryRuns = 5;
        const int WarmUpRuns = 3;

        public static int Run()
        {
            if (Environment.GetEnvironmentVariable("IPVLANCNI_SANDBOX") != "1")
            {
                Console.Error.WriteLine("bench: runs only inside the sandbox (make bench): it creates links in its own namespace");
                return 2;
            }
            string ours = Environment.GetEnvironmentVariable("IPVLANCNI_PLUGIN") is { Length: > 0 } configured
                ? configured
                : throw new InvalidOperationException("IPVLANCNI_PLUGIN must name the published ipvlan-cni (make bench sets it)");
            foreach (string required in new[] { ours, $"{ReferenceDir}/ipvlan", $"{ReferenceDir}/host-local", NetlinkTrace.Strace, "/bin/true" })
                if (!File.Exists(required))
                    throw new FileNotFoundException($"bench: {required} is missing (make deps installs the Debian packages)");

            Directory.CreateDirectory(WorkDir);
            var plugins = new[]
            {
                new PluginUnderTest("ours", ours, "ipvlan-cni", $"{Path.GetDirectoryName(ours)}:{ReferenceDir}", WorkDir),
                new PluginUnderTest("reference", $"{ReferenceDir}/ipvlan", "ipvlan", ReferenceDir, WorkDir),
            };
            var (our, reference) = (plugins[0], plugins[1]);
            var pods = CreateNode(Math.Max(2 * Sequential, Concurrent));
            // The plugins take turns, so both have pods up at once; ipvlan refuses one address on two slaves of a
            // master. The reference's host-local store starts its allocation cursor half way through the (same) range.
            Directory.CreateDirectory($"{WorkDir}/ipvlan-ipam/bench");
            File.WriteAllText($"{WorkDir}/ipvlan-ipam/bench/last_reserved_ip.0", "10.10.1.125");
            Progress($"node ready: master {MasterName}, {pods.Count} pod namespaces; warming up");
            if (Environment.GetEnvironmentVariable("IPVLANCNI_BENCH_ONLY") == "explain")
                return ExplainOnly(our, pods); // the explain section alone, for working on it
            if (Environment.GetEnvironmentVariable("IPVLANCNI_BENCH_ONLY") == "cluster")
                return ClusterOnly(reference, ours, pods); // the cluster IPAM section alone

            foreach (var plugin in plugins)
                for (int i = 0; i < WarmUpRuns; i++)
                {
                    plugin.Version().Succeeded("VERSION");
                    plugin.Add($"warm{i}", pods[0]).Succeeded($"{plugin.Label} warm-up ADD");
                    plugin.Del($"warm{i}", pods[0]).Succeeded($"{plugin.Label} warm-up DEL");
                }

            Progress("start-up: VERSION");
            var startup = plugins.ToDictionary(p => p, _ => new List<double>());
            var floor = new List<double>();
            for (int i = 0; i < StartupRuns; i++)
            {
                floor.Add(Spawner.Wait(Spawner.Start("/bin/true", [], new Dictionary<string, string>(), "/dev/null", "/dev/null")).Elapsed.TotalMilliseconds);
                foreach (var plugin in plugins)
                    startup[plugin].Add(plugin.Version().Succeeded("VERSION").Elapsed.TotalMilliseconds);
            }

            Progress($"sequential: {Sequential} ADDs then {Sequential} DELs per plugin, the plugins taking turns");
            // Turn by turn (and who goes first alternates), so the host's other load lands on both alike.
            var adds = plugins.ToDictionary(p => p, _ => new List<double>());
            var dels = plugins.ToDictionary(p => p, _ => new List<double>());
            IEnumerable<(PluginUnderTest Plugin, string Pod)> Turn(int i) =>
                (i % 2 == 0 ? plugins : plugins.AsEnumerable().Reverse()).Select(p => (p, pods[p == our ? i : Sequential + i]));
            for (int i = 0; i < Sequential; i++)
                foreach (var (plugin, pod) in Turn(i))
                    adds[plugin].Add(plugin.Add($"seq{i}", pod).Succeeded($"{plugin.Label} ADD").Elapsed.TotalMilliseconds);
            for (int i = 0; i < Sequential; i++)
                foreach (var (plugin, pod) in Turn(i))
                    dels[plugin].Add(plugin.Del($"seq{i}", pod).Succeeded($"{plugin.Label} DEL").Elapsed.TotalMilliseconds);

            Progress($"concurrent: {Concurrent} ADDs at once, then {Concurrent} DELs at once, {ConcurrentRounds} rounds per plugin");
            var concurrentAdd = plugins.ToDictionary(p => p, _ => new List<double>());
            var concurrentDel = plugins.ToDictionary(p => p, _ => new List<double>());
            for (int round = 0; round < ConcurrentRounds; round++)
                foreach (var plugin in plugins)
                {
                    concurrentAdd[plugin].Add(AllAtOnce(plugin, "ADD", pods));
                    concurrentDel[plugin].Add(AllAtOnce(plugin, "DEL", pods));
                }

            Progress($"peak RSS: {MemoryRuns} ADDs per plugin (taskstats hiwater_rss)");
            Dictionary<PluginUnderTest, Memory> memory;
            using (var taskStats = TaskStats.Listen())
                memory = plugins.ToDictionary(p => p, p => PeakMemory(p, pods, taskStats));

            Progress("netlink: one ADD and one DEL per plugin under strace, next to one live pod");
            var netlink = plugins.ToDictionary(p => p, p => CountNetlink(p, pods));

            long ourSize = new FileInfo(our.Path).Length;
            long referenceSize = new FileInfo(reference.Path).Length + new FileInfo($"{ReferenceDir}/host-local").Length;
            double Ms(IEnumerable<double> values) => values.Average();
            var rows = new List<Row>
            {
                // Goals on the medians: the host's other load lands on either plugin at random and skews means.
                Row.Compare($"sequential ADD, median of {Sequential}", Table.Median(adds[our]), Table.Median(adds[reference]), Table.Milliseconds, 0.5),
                Row.Compare($"  mean of {Sequential}", Ms(adds[our]), Ms(adds[reference]), Table.Milliseconds, null),
                Row.Compare($"sequential DEL, median of {Sequential}", Table.Median(dels[our]), Table.Median(dels[reference]), Table.Milliseconds, 0.5),
                Row.Compare($"  mean of {Sequential}", Ms(dels[our]), Ms(dels[reference]), Table.Milliseconds, null),
                Row.Compare($"{Concurrent} concurrent ADDs, wall time (mean of {ConcurrentRounds})", Ms(concurrentAdd[our]), Ms(concurrentAdd[reference]), Table.Milliseconds, 0.5),
                Row.Compare($"{Concurrent} concurrent DELs, wall time (mean of {ConcurrentRounds})", Ms(concurrentDel[our]), Ms(concurrentDel[reference]), Table.Milliseconds, null),
                Row.Compare("peak RSS of one ADD, process tree", memory[our].Tree, memory[reference].Tree, Table.Kibibytes, 1.0),
                new("  the plugin process itself (taskstats)", Table.Kibibytes(memory[our].Plugin), Table.Kibibytes(memory[reference].Plugin), memory[our].Plugin / memory[reference].Plugin, null),
                new("  its children, max (taskstats)", Children(memory[our]), Children(memory[reference]), null, null),
                Row.Compare("executable size (reference: ipvlan + host-local)", ourSize, referenceSize, b => Table.Mebibytes((long)b), null),
                new("netlink per ADD (messages/round trips/sockets)", Netlink(netlink[our].Add), Netlink(netlink[reference].Add),
                    (double)netlink[our].Add.Messages / netlink[reference].Add.Messages, 1.0),
                new("netlink per DEL (messages/round trips/sockets)", Netlink(netlink[our].Del), Netlink(netlink[reference].Del),
                    (double)netlink[our].Del.Messages / netlink[reference].Del.Messages, 1.0),
                Row.Compare($"VERSION start-up, median of {StartupRuns}", Table.Median(startup[our]), Table.Median(startup[reference]), Table.Milliseconds, null),
                new($"  /bin/true start-up, median of {StartupRuns} (floor)", Table.Milliseconds(Table.Median(floor)), Table.Milliseconds(Table.Median(floor)), null, null),
            };
            Console.Write(Table.Format(rows));
            var missed = rows.Where(r => r.GoalMet == false).Select(r => r.Metric.Trim()).ToList();

            Progress($"explain: one `ipvlan-cni explain` pod to pod on a node with {ExplainBench.Pods} pods");
            var explain = ExplainBench.Measure(our, pods, $"{WorkDir}/ipvlan-cni-state", WorkDir);
            Console.WriteLine(explain);
            if (!explain.Met)
                missed.Add("explain within 200 ms");
            missed.AddRange(Cluster(reference, ours, pods));
            Console.WriteLine(missed.Count == 0
                ? "bench: every goal met"
                : $"bench: goal missed: {string.Join("; ", missed)}");
            return missed.Count == 0 ? 0 : 1;
        }

        /// <summary>The cluster IPAM section (etcd and agents started here): its table and lines; the goals it missed.</summary>
        static List<string> Cluster(PluginUnderTest reference, string ours, List<string> pods)
        {
            var report = ClusterIpamBench.Run(reference, ours, pods, ReferenceDir);
            Console.Write(Table.Format(report.Rows));
            foreach (var line in report.Lines)
                Console.WriteLine(line);
            return [.. report.Missed, .. report.Rows.Where(r => r.GoalMet == false).Select(r => r.Metric.Trim())];
        }

        static int ClusterOnly(PluginUnderTest reference, string ours, List<string> pods)
        {
            var missed = Cluster(reference, ours, pods);
            Console.WriteLine(missed.Count == 0 ? "bench: every goal met" : $"bench: goal missed: {string.Join("; ", missed)}");
            return missed.Count == 0 ? 0 : 1;
        }

        static int ExplainOnly(PluginUnderTest our, List<string> pods)
        {
            var explain = ExplainBench.Measure(our, pods, $"{WorkDir}/ipvlan-cni-state", WorkDir);
            Console.WriteLine(explain);
            return explain.Met ? 0 : 1;
        }

        /// <summary>The master (a dummy link, up, addressed) and the pod namespaces, in this (the sandbox's) namespace.</summary>
        static List<string> CreateNode(int podCount)
        {
            using var host = RouteClient.Open();
            host.CreateLink(new DummyLinkSpec(MasterName));
            int index = host.GetLink(MasterName).Index;
            host.ChangeLink(index, new LinkChange { Up = true });
            host.AddAddress(new AddressInfo(index, IpPrefix.Parse("10.10.0.1/16")));
            var pods = new List<string>();
            for (int i = 1; i <= podCount; i++)
            {
                using var pod = NetNamespace.CreateNamed($"bench{i}");
                pods.Add(pod.Path);
            }
            return pods;
        }

        /// <summary>Starts one command per pod at once; the wall time until the last one exits.</summary>
        static double AllAtOnce(PluginUnderTest plugin, string command, IReadOnlyList<string> pods)
        {
            var clock = Stopwatch.StartNew();
            var started = pods.Take(Concurrent).Select((pod, i) => plugin.Start(command, $"conc{i}", pod, slot: i)).ToList();
            var exits = Spawner.WaitAll(started);
            double wall = clock.Elapsed.TotalMilliseconds;
            foreach (var exited in exits)
                plugin.Finish(exited, started.FindIndex(c => c.ProcessId == exited.ProcessId)).Succeeded($"{plugin.Label} concurrent {command}");
            return wall;
        }

        /// <summary>Peak RSS in KiB of the plugin itself and of its children (taskstats).</summary>
        sealed record Memory(double Plugin, double? Children)
        {
            public double Tree => Math.Max(Plugin, Children ?? 0);
        }

        /// <summary>
        /// Peak RSS over a few ADDs, from the exit reports taskstats sends before the plugin's wait returns: the
        /// plugin's own (its threads' parent is this process) and its children's (their parent is the plugin); the
        /// tree's peak is the larger. Not wait4's ru_maxrss: for a child spawned from this process it starts at this
        /// (large) process's peak, which exec records before the plugin runs.
        /// </summary>
        static Memory PeakMemory(PluginUnderTest plugin, IReadOnlyList<string> pods, TaskStats taskStats)
        {
            uint self = (uint)Environment.ProcessId;
            double own = 0;
            double? children = null;
            for (int i = 0; i < MemoryRuns; i++)
            {
                int before = taskStats.Snapshot().Count;
                var run = plugin.Add($"mem{i}", pods[i]).Succeeded($"{plugin.Label} ADD");
                Thread.Sleep(100); // the listener thread reads the reports
                var exits = taskStats.Snapshot().Skip(before).ToList();
                var mine = exits.Where(e => e.ParentPid == self).ToList();
                if (!mine.Any(e => e.Pid == run.ProcessId))
                    throw new InvalidOperationException($"taskstats: no exit report for {plugin.Label} (pid {run.ProcessId})");
                own = Math.Max(own, mine.Max(e => e.PeakRssKb));
                foreach (var child in exits.Where(e => e.ParentPid == run.ProcessId))
                    children = Math.Max(children ?? 0, child.PeakRssKb);
                plugin.Del($"mem{i}", pods[i]).Succeeded($"{plugin.Label} DEL");
            }
            return new Memory(own, children);
        }

        static string Children(Memory memory) => memory.Children is { } kb ? Table.Kibibytes(kb) : "none";

        /// <summary>ADD and DEL of one pod while another pod is attached, as on a node in use.</summary>
        static (NetlinkCount Add, NetlinkCount Del) CountNetlink(PluginUnderTest plugin, IReadOnlyList<string> pods)
        {
            plugin.Add("neighbour", pods[^1]).Succeeded($"{plugin.Label} ADD");
            var add = NetlinkTrace.Count(plugin, "ADD", "traced", pods[0], $"{WorkDir}/{plugin.Label}-add.strace");
            var del = NetlinkTrace.Count(plugin, "DEL", "traced", pods[0], $"{WorkDir}/{plugin.Label}-del.strace");
            plugin.Del("neighbour", pods[^1]).Succeeded($"{plugin.Label} DEL");
            return (add, del);
        }

        static string Netlink(NetlinkCount count) =>
            string.Create(CultureInfo.InvariantCulture, $"{count.Messages}/{count.Sends}/{count.Sockets}");

        static void Progress(string message) => Console.Error.WriteLine($"bench: {message}");
    }
}
