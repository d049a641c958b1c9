using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace IpvlanCni.Bench;

/// <summary>
/// Cluster IPAM on etcd (IPAM type ipvlan-cni-ipam), in the same sandbox boot: Debian's etcd and the published agent
/// started here on loopback and stopped by PID.
/// - One member: ipvlan-cni with ipvlan-cni-ipam against the reference ipvlan + host-local, ADD and DEL (goal ADD
///   &lt;= 0.6x), and the etcd round trips per ADD as the agent counts them.
/// - The steady-state ADD (the node's block has room) on a /24 and a /16, with 10 or 200 other nodes' blocks in etcd:
///   round trips (goal &lt;= 2) and the cost ratio between the sizes (goal &lt;= 1.2).
/// - Three members: simulated nodes (each its own agent) adding pods at once through the standalone plugin:
///   throughput and p50/p99 latency per ADD.
/// </summary>
static class ClusterIpamBench
{
    const string Dir = "/tmp/bench/cluster";
    const int Sequential = 30;
    /// <summary>ADDs per size and kind; each is DELed right after, so all stay in the node's one block.</summary>
    const int SteadyAdds = 20;
    public const int Nodes = 10;
    public const int PodsPerNode = 100;

    public sealed record Report(List<Row> Rows, List<string> Lines, List<string> Missed);

    public static Report Run(PluginUnderTest reference, string ours, IReadOnlyList<string> pods, string referenceDir)
    {
        Directory.CreateDirectory(Dir);
        string binDir = Path.GetDirectoryName(ours)!;
        var rows = new List<Row>();
        var lines = new List<string>();
        var missed = new List<string>();

        Progress("cluster IPAM: one etcd member and the agent");
        using (var etcd = new Etcd(1, 22379, "single"))
        using (var agent = new AgentRun(binDir, "single"))
        {
            agent.WaitReady(etcd.EndpointsJson);
            var ourIpam = IpamObject(etcd.EndpointsJson, agent.Socket, "bench", "10.10.2.1", "10.10.2.250");
            var ourPlugin = new PluginUnderTest("ours-etcd", ours, "ipvlan-cni", $"{binDir}:{referenceDir}", "/tmp/bench", ourIpam);
            for (int i = 0; i < 3; i++)
            {
                ourPlugin.Add($"cwarm{i}", pods[0]).Succeeded("ours (etcd) warm-up ADD");
                ourPlugin.Del($"cwarm{i}", pods[0]).Succeeded("ours (etcd) warm-up DEL");
            }
            Progress($"cluster IPAM: {Sequential} ADDs then {Sequential} DELs, ipvlan-cni + ipvlan-cni-ipam and the reference taking turns");
            var adds = new Dictionary<string, List<double>> { ["ours"] = [], ["reference"] = [] };
            var dels = new Dictionary<string, List<double>> { ["ours"] = [], ["reference"] = [] };
            long tripsBefore = agent.RoundTrips();
            for (int i = 0; i < Sequential; i++)
                foreach (bool oursFirst in new[] { i % 2 == 0, i % 2 != 0 })
                    if (oursFirst)
                        adds["ours"].Add(ourPlugin.Add($"cseq{i}", pods[i]).Succeeded("ours (etcd) ADD").Elapsed.TotalMilliseconds);
                    else
                        adds["reference"].Add(reference.Add($"cseq{i}", pods[Sequential + i]).Succeeded("reference ADD").Elapsed.TotalMilliseconds);
            double tripsPerAdd = (agent.RoundTrips() - tripsBefore) / (double)Sequential;
            tripsBefore = agent.RoundTrips();
            for (int i = 0; i < Sequential; i++)
                foreach (bool oursFirst in new[] { i % 2 == 0, i % 2 != 0 })
                    if (oursFirst)
                        dels["ours"].Add(ourPlugin.Del($"cseq{i}", pods[i]).Succeeded("ours (etcd) DEL").Elapsed.TotalMilliseconds);
                    else
                        dels["reference"].Add(reference.Del($"cseq{i}", pods[Sequential + i]).Succeeded("reference DEL").Elapsed.TotalMilliseconds);
            double tripsPerDel = (agent.RoundTrips() - tripsBefore) / (double)Sequential;
            rows.Add(Row.Compare($"ADD with ipvlan-cni-ipam (etcd), median of {Sequential}", Table.Median(adds["ours"]), Table.Median(adds["reference"]), Table.Milliseconds, 0.6));
            rows.Add(Row.Compare($"DEL with ipvlan-cni-ipam (etcd), median of {Sequential}", Table.Median(dels["ours"]), Table.Median(dels["reference"]), Table.Milliseconds, null));
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"cluster IPAM, one etcd member: {tripsPerAdd:0.00} etcd round trips per ADD over {Sequential} ADDs (block claims included), {tripsPerDel:0.00} per DEL"));

            Progress($"cluster IPAM: steady-state ADDs on a /24 and a /16, next to 10 or 200 other nodes' blocks");
            var sizes = new (string Name, string Subnet, int OtherNodes)[] { ("/24, 10 nodes", "10.50.0.0/24", 10), ("/16, 10 nodes", "10.51.0.0/16", 10), ("/16, 200 nodes", "10.52.0.0/16", 200) };
            var configs = new List<string>();
            foreach (var (name, subnet, others) in sizes)
            {
                string network = "size" + configs.Count;
                string config = StandaloneConfig(network, subnet, etcd.EndpointsJson, agent.Socket, "measured");
                configs.Add(config);
                for (int j = 0; j < others; j++)
                    agent.Request("add", StandaloneConfig(network, subnet, etcd.EndpointsJson, agent.Socket, $"other{j}"), $"other{j}pod");
                // The measured node's first ADD claims its block; the ones measured below find room in it.
                Standalone(binDir, "ADD", $"{network}-warm", config).Succeeded($"{name} warm-up ADD");
            }
            // Per size: the whole standalone plugin process, and the allocation alone (the plugin's request to the
            // agent, straight over its socket): in the sandbox a process start is most of an ADD and varies with the
            // host's load, so the cost ratio between the sizes is taken on the allocation. Each ADD is DELed at once.
            var processTimes = sizes.Select(_ => new List<double>()).ToArray();
            var allocationTimes = sizes.Select(_ => new List<double>()).ToArray();
            var trips = new long[sizes.Length];
            // Round by round, and who goes first rotates, so the host's other load lands on every size alike.
            for (int i = 0; i < SteadyAdds; i++)
                foreach (int s in Enumerable.Range(0, sizes.Length).Select(j => (i + j) % sizes.Length))
                {
                    long before = agent.RoundTrips();
                    processTimes[s].Add(Standalone(binDir, "ADD", $"size{s}-p{i}", configs[s]).Succeeded($"{sizes[s].Name} ADD").Elapsed.TotalMilliseconds);
                    trips[s] += agent.RoundTrips() - before;
                    agent.Request("del", configs[s], $"size{s}-p{i}");
                    before = agent.RoundTrips();
                    long start = Stopwatch.GetTimestamp();
                    agent.Request("add", configs[s], $"size{s}-a{i}");
                    allocationTimes[s].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    trips[s] += agent.RoundTrips() - before;
                    agent.Request("del", configs[s], $"size{s}-a{i}");
                }
            var medians = allocationTimes.Select(t => Table.Median(t)).ToArray();
            for (int s = 0; s < sizes.Length; s++)
            {
                double perAdd = trips[s] / (2.0 * SteadyAdds);
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"steady-state ADD, {sizes[s].Name}' blocks: {perAdd:0.00} etcd round trips (goal <= 2: {(perAdd <= 2 ? "met" : "MISSED")}), " +
                    $"allocation median {medians[s]:0.0} ms, ipvlan-cni-ipam process median {Table.Median(processTimes[s]):0.0} ms"));
                if (perAdd > 2)
                    missed.Add($"round trips per steady-state ADD ({sizes[s].Name})");
            }
            double ratio = medians.Max() / medians.Min();
            double processRatio = processTimes.Max(t => Table.Median(t)) / processTimes.Min(t => Table.Median(t));
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"cost ratio between the sizes (slowest/fastest allocation median): {ratio:0.00} (goal <= 1.2: {(ratio <= 1.2 ? "met" : "MISSED")}); whole processes: {processRatio:0.00}"));
            if (ratio > 1.2)
                missed.Add("cost ratio between range sizes");

            // Where an allocation's time goes: the agent's transport alone (ping: connect, a thread, one line each way),
            // plus parsing the network configuration and one quorum read (status), plus the second round trip (add).
            var ping = new List<double>();
            var status = new List<double>();
            foreach (int i in Enumerable.Range(0, SteadyAdds))
            {
                long start = Stopwatch.GetTimestamp();
                agent.RoundTrips();
                ping.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                start = Stopwatch.GetTimestamp();
                agent.Request("status", configs[0], "");
                status.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"an allocation's parts (medians of {SteadyAdds}): agent transport (ping) {Table.Median(ping):0.0} ms, + config and one etcd read (status) {Table.Median(status):0.0} ms, " +
                $"the whole steady-state allocation (two round trips) {medians[0]:0.0} ms"));
        }

        Progress($"cluster IPAM: three etcd members, {Nodes} simulated nodes (an agent each) asking for {PodsPerNode} addresses each at once");
        using (var etcd = new Etcd(3, 22479, "three"))
        {
            var agents = Enumerable.Range(0, Nodes).Select(i => new AgentRun(binDir, $"node{i}")).ToList();
            try
            {
                foreach (var a in agents)
                    a.WaitReady(etcd.EndpointsJson);
                var configs = agents.Select((a, i) => StandaloneConfig("storm", "10.60.0.0/16", etcd.EndpointsJson, a.Socket, $"node{i}")).ToList();
                // The plugin's own request to its node's agent, straight over the socket: this measures the allocation
                // (agent and etcd), not the sandbox's single CPU starting 1000 processes (the rows above time a whole ADD).
                var latencies = new List<double>[Nodes];
                var clock = Stopwatch.StartNew();
                var threads = Enumerable.Range(0, Nodes).Select(n => new Thread(() =>
                {
                    latencies[n] = [];
                    for (int p = 0; p < PodsPerNode; p++)
                    {
                        long start = Stopwatch.GetTimestamp();
                        agents[n].Request("add", configs[n], $"n{n}p{p}");
                        latencies[n].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                })).ToList();
                threads.ForEach(t => t.Start());
                threads.ForEach(t => t.Join());
                double seconds = clock.Elapsed.TotalSeconds;
                var all = latencies.SelectMany(l => l).Order().ToList();
                long trips = agents.Sum(a => a.RoundTrips());
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{Nodes * PodsPerNode} allocations from {Nodes} nodes at once (each node's agent asked as its plugin asks), three etcd members: {seconds:0.0} s ({Nodes * PodsPerNode / seconds:0} ADDs/s), " +
                    $"per ADD p50 {Percentile(all, 0.50):0.0} ms, p99 {Percentile(all, 0.99):0.0} ms, max {all[^1]:0.0} ms; {trips / (double)(Nodes * PodsPerNode):0.00} round trips per ADD " +
                    $"(Spiderpool, whole pods: 1000 pods on 10 nodes in 207 s)"));
            }
            finally
            {
                foreach (var a in agents)
                    a.Dispose();
            }
        }
        return new Report(rows, lines, missed);
    }

    static double Percentile(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];

    static JsonObject IpamObject(string endpointsJson, string socket, string node, string? rangeStart = null, string? rangeEnd = null, string subnet = "10.10.0.0/16")
    {
        var range = new JsonObject { ["subnet"] = subnet };
        if (rangeStart is not null)
        {
            range["rangeStart"] = rangeStart;
            range["rangeEnd"] = rangeEnd;
            range["gateway"] = "10.10.0.1";
        }
        return new JsonObject
        {
            ["type"] = "ipvlan-cni-ipam",
            ["node"] = node,
            ["agentSocket"] = socket,
            ["etcdEndpoints"] = JsonNode.Parse($"[{endpointsJson}]"),
            ["ranges"] = new JsonArray(new JsonArray(range)),
            ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
        };
    }

    static string StandaloneConfig(string network, string subnet, string endpointsJson, string socket, string node) => new JsonObject
    {
        ["cniVersion"] = "1.0.0",
        ["name"] = network,
        ["type"] = "macvlan",
        ["ipam"] = IpamObject(endpointsJson, socket, node, subnet: subnet),
    }.ToJsonString();

    /// <summary>The published standalone IPAM plugin, run as a runtime runs it (IPAM only: no link).</summary>
    static PluginRun Standalone(string binDir, string command, string containerId, string config, int slot = 0)
    {
        string input = $"{Dir}/standalone-{slot}.conf", output = $"{Dir}/standalone-{slot}.out";
        File.WriteAllText(input, config);
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = "/var/run/netns/none",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = binDir,
        };
        var exited = Spawner.Wait(Spawner.Start($"{binDir}/ipvlan-cni-ipam", [], env, input, output));
        return new PluginRun(exited.ExitCode, File.ReadAllText(output), exited.Elapsed, exited.ProcessId);
    }

    static void Progress(string message) => Console.Error.WriteLine($"bench: {message}");

    /// <summary>Debian's etcd members on loopback, a throw-away data folder each; stopped by PID.</summary>
    sealed class Etcd : IDisposable
    {
        readonly List<Spawner.Child> _members = [];

        public Etcd(int size, int firstPort, string name)
        {
            var urls = Enumerable.Range(0, size).Select(i => (Client: $"http://127.0.0.1:{firstPort + 2 * i}", Peer: $"http://127.0.0.1:{firstPort + 2 * i + 1}")).ToList();
            string cluster = string.Join(",", urls.Select((u, i) => $"{name}{i}={u.Peer}"));
            for (int i = 0; i < size; i++)
            {
                string data = $"{Dir}/etcd-{name}{i}";
                if (Directory.Exists(data))
                    Directory.Delete(data, true);
                _members.Add(Spawner.Start("/usr/bin/etcd",
                [
                    "--name", $"{name}{i}", "--data-dir", data,
                    "--listen-client-urls", urls[i].Client, "--advertise-client-urls", urls[i].Client,
                    "--listen-peer-urls", urls[i].Peer, "--initial-advertise-peer-urls", urls[i].Peer,
                    "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", name,
                    "--logger", "zap", "--log-level", "error", "--log-outputs", $"{Dir}/etcd-{name}{i}.log",
                ], new Dictionary<string, string>(), "/dev/null", $"{Dir}/etcd-{name}{i}.out"));
            }
            EndpointsJson = string.Join(",", urls.Select(u => $"\"{u.Client}\""));
        }

        public string EndpointsJson { get; }

        public void Dispose()
        {
            foreach (var m in _members)
            {
                Spawner.Signal(m.ProcessId, Spawner.SIGTERM);
                Spawner.Wait(m);
            }
        }
    }

    /// <summary>The published agent (ipvlan-cni-agent agent) on a socket of its own; asked over it as the plugin asks.</summary>
    sealed class AgentRun : IDisposable
    {
        readonly Spawner.Child _child;

        public AgentRun(string binDir, string name)
        {
            Socket = $"{Dir}/agent-{name}.sock";
            File.Delete(Socket);
            _child = Spawner.Start($"{binDir}/ipvlan-cni-agent", ["agent", "--socket", Socket, "--lease-dir", $"{Dir}/leases-{name}", "--log-file", $"{Dir}/agent-{name}.log"],
                new Dictionary<string, string>(), "/dev/null", $"{Dir}/agent-{name}.out");
        }

        public string Socket { get; }

        /// <summary>Until the socket answers and etcd has a quorum (a status request is a quorum read).</summary>
        public void WaitReady(string endpointsJson)
        {
            var until = DateTime.UtcNow.AddSeconds(60);
            string config = StandaloneConfig("probe", "10.255.0.0/24", endpointsJson, Socket, "probe");
            while (true)
            {
                try
                {
                    if (Ask($"{{\"service\":\"cluster-ipam\",\"op\":\"status\",\"args\":{{\"config\":{config},\"cniArgs\":[]}}}}").RootElement.GetProperty("ok").GetBoolean())
                        return;
                }
                catch (SocketException)
                {
                }
                if (DateTime.UtcNow > until)
                    throw new InvalidOperationException($"bench: the agent on {Socket} or etcd did not come up within 60 s");
                Thread.Sleep(100);
            }
        }

        /// <summary>One ADD or DEL straight over the socket, the request the plugin sends.</summary>
        public void Request(string op, string config, string containerId)
        {
            string identity = containerId.Length > 0 ? $",\"containerId\":\"{containerId}\",\"ifName\":\"eth0\"" : "";
            using var answer = Ask($"{{\"service\":\"cluster-ipam\",\"op\":\"{op}\",\"args\":{{\"config\":{config}{identity},\"cniArgs\":[]}}}}");
            if (!answer.RootElement.GetProperty("ok").GetBoolean())
                throw new InvalidOperationException($"bench: agent {op} failed: {answer.RootElement.GetRawText()}");
        }

        /// <summary>The agent's own count of etcd round trips (its ping answer: "cluster-ipam: N etcd connection(s), M round trips").</summary>
        public long RoundTrips()
        {
            using var answer = Ask("{\"service\":\"agent\",\"op\":\"ping\",\"args\":{}}");
            foreach (var s in answer.RootElement.GetProperty("result").GetProperty("services").EnumerateArray())
                if (s.GetString() is { } text && text.StartsWith("cluster-ipam: ", StringComparison.Ordinal))
                {
                    string count = text[(text.LastIndexOf(", ", StringComparison.Ordinal) + 2)..].Split(' ')[0];
                    return long.Parse(count, CultureInfo.InvariantCulture);
                }
            throw new InvalidOperationException("bench: the agent has no cluster-ipam service");
        }

        JsonDocument Ask(string line)
        {
            using var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.ReceiveTimeout = 20_000;
            socket.Connect(new UnixDomainSocketEndPoint(Socket));
            socket.Send(Encoding.UTF8.GetBytes(line + "\n"));
            var buffer = new MemoryStream();
            var chunk = new byte[65536];
            while (true)
            {
                int n = socket.Receive(chunk);
                if (n == 0)
                    break;
                buffer.Write(chunk, 0, n);
                if (chunk.AsSpan(0, n).Contains((byte)'\n'))
                    break;
            }
            return JsonDocument.Parse(buffer.ToArray());
        }

        public void Dispose()
        {
            Spawner.Signal(_child.ProcessId, Spawner.SIGTERM);
            Spawner.Wait(_child);
        }
    }
}
