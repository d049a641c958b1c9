using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

/// <summary>
/// Several nodes on one wire sharing one subnet through etcd, built with our own netlink client: a "wire"
/// namespace with bridge br0 (10.77.0.254, where a one-member etcd listens), and per node a namespace whose
/// business NIC ens10 is a veth end on br0 (node i holds 10.77.0.i), its own agent (the published
/// `ipvlan-cni agent`, its own socket and log) and its own plugin folders. Pods are attached only by the plugin.
/// Every process is started here and stopped by its PID; Dispose removes every namespace and folder.
/// <code>
/// using var lab = new ClusterLab(nodes: 3);               // wire, nodes, etcd, agents
/// var pod = lab.AddPod(lab.Nodes[0]);
/// var added = lab.Nodes[0].Cni.Add(lab.Config(lab.Nodes[0], "net1"), pod, "c1").Succeeded("ADD");
/// </code>
/// </summary>
public sealed class ClusterLab : IDisposable
{
    public const string Nic = "ens10";
    public const string BridgeName = "br0";
    const int LoopbackIndex = 1; // LOOPBACK_IFINDEX
    public static readonly IpPrefix Subnet = IpPrefix.Parse("10.77.0.0/24");
    public static readonly IpPrefix Subnet6 = IpPrefix.Parse("fd77::/64");
    public static readonly IPAddress WireAddress = IPAddress.Parse("10.77.0.254");
    const int EtcdPort = 2379;

    readonly List<string> _namedNamespaces = [];
    readonly List<NetNamespace> _namespaces = [];
    readonly List<ClusterNode> _nodes = [];
    readonly List<Pod> _pods = [];
    readonly List<Process> _processes = [];
    readonly Dictionary<int, List<string>> _output = [];
    int _podCount, _hosts;

    /// <param name="nodes">How many node namespaces (at most 9).</param>
    /// <param name="etcd">Start etcd and an agent per node (false: the wire and nodes only, for host-local).</param>
    public ClusterLab(int nodes, bool etcd = true)
    {
        Name = $"cl{Random.Shared.Next(0x1000000):x6}";
        try
        {
            Directory.CreateDirectory(Folder);
            Wire = CreateNamespace("wire");
            WireClient = RouteClient.OpenIn(Wire);
            DisableDad(Wire);
            WireClient.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
            WireClient.CreateLink(new BridgeLinkSpec(BridgeName));
            BridgeIndex = WireClient.GetLink(BridgeName).Index;
            WireClient.ChangeLink(BridgeIndex, new LinkChange { Up = true });
            AddAddress(WireClient, BridgeIndex, new IpPrefix(WireAddress, Subnet.PrefixLength));
            AddAddress(WireClient, BridgeIndex, IpPrefix.Parse("fd77::fe/64"));
            for (int i = 1; i <= nodes; i++)
                _nodes.Add(BuildNode(i));
            if (etcd)
            {
                StartEtcd();
                foreach (var node in _nodes)
                {
                    WaitForEtcdFrom(node);
                    StartAgent(node);
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Prefix of every namespace and folder this lab makes; also its etcd key prefix.</summary>
    public string Name { get; }
    public string Folder => $"/tmp/{Name}";
    public NetNamespace Wire { get; } = null!;
    public RouteClient WireClient { get; } = null!;
    public int BridgeIndex { get; }
    public IReadOnlyList<ClusterNode> Nodes => _nodes;
    public Process? Etcd { get; private set; }
    public string EtcdEndpoint => $"http://{WireAddress}:{EtcdPort}";
    public string KeyPrefix => $"/ipvlan-cni-lab/{Name}";

    /// <summary>
    /// An ipvlan-cni l2 network on a node's ens10 with IPAM "ipvlan-cni-ipam": one range of <see cref="Subnet"/>
    /// (.first to .last), small blocks so that nodes claim and borrow, this node's name, socket and folders.
    /// </summary>
    public JsonObject Config(ClusterNode node, string network, int first = 100, int last = 199, int blockSize = 4) => new()
    {
        ["cniVersion"] = "1.1.0",
        ["name"] = network,
        ["type"] = "ipvlan-cni",
        ["master"] = Nic,
        ["mode"] = "l2",
        ["stateDir"] = node.StateDir,
        ["ipam"] = new JsonObject
        {
            ["type"] = "ipvlan-cni-ipam",
            ["etcdEndpoints"] = new JsonArray(EtcdEndpoint),
            ["node"] = node.Name,
            ["agentSocket"] = node.AgentSocket,
            ["keyPrefix"] = KeyPrefix,
            ["blockSize"] = blockSize,
            ["timeoutSeconds"] = 60, // the first ADDs of a fresh agent on the sandbox's one CPU have run out of 20 s (twice in ~6 runs)
            ["ranges"] = new JsonArray(new JsonArray(new JsonObject
            {
                ["subnet"] = Subnet.ToString(),
                ["rangeStart"] = $"10.77.0.{first}",
                ["rangeEnd"] = $"10.77.0.{last}",
            })),
        },
    };

    /// <summary>The same network with host-local IPAM in this node's own folder (each node its own store: the duplicate problem).</summary>
    public JsonObject HostLocalConfig(ClusterNode node, string network, bool dualStack = false)
    {
        var ranges = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = Subnet.ToString(), ["rangeStart"] = "10.77.0.100", ["rangeEnd"] = "10.77.0.199" }));
        if (dualStack)
            ranges.Add(new JsonArray(new JsonObject { ["subnet"] = Subnet6.ToString(), ["rangeStart"] = "fd77::100", ["rangeEnd"] = "fd77::199" }));
        return new JsonObject
        {
            ["cniVersion"] = "1.1.0",
            ["name"] = network,
            ["type"] = "ipvlan-cni",
            ["master"] = Nic,
            ["mode"] = "l2",
            ["stateDir"] = node.StateDir,
            ["ipam"] = new JsonObject { ["type"] = "host-local", ["ranges"] = ranges, ["dataDir"] = node.IpamDir },
        };
    }

    /// <summary>A pod namespace with lo up (IPv6 duplicate address detection off, to keep ADD quick).</summary>
    public Pod AddPod(ClusterNode node)
    {
        var ns = CreateNamespace($"{node.Short}p{++_podCount}");
        DisableDad(ns);
        using var client = RouteClient.OpenIn(ns);
        client.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
        _namespaces.Remove(ns);
        var pod = new Pod(ns);
        _pods.Add(pod);
        return pod;
    }

    /// <summary>Removes a pod's namespace (after its DEL), as a runtime does when the pod is gone.</summary>
    public void RemovePod(Pod pod) => Remove(pod.Namespace);

    /// <summary>Removes a namespace of this lab (a pod's, a foreign host's) and the links in it.</summary>
    public void Remove(NetNamespace ns)
    {
        string name = Path.GetFileName(ns.Path);
        ns.Dispose();
        _namespaces.Remove(ns);
        NetNamespace.DeleteNamed(name);
        _namedNamespaces.Remove(name);
    }

    /// <summary>
    /// Another machine on the wire that is none of our nodes: a namespace with a veth end on br0 holding these
    /// addresses (IPv6 without duplicate address detection), answering ARP and neighbour solicitations for them.
    /// </summary>
    public NetNamespace AddForeignHost(params IpPrefix[] addresses)
    {
        var ns = CreateNamespace($"h{++_hosts}");
        DisableDad(ns);
        using var client = RouteClient.OpenIn(ns);
        int index = Connect(client, ns, "eth0", $"h{_hosts}");
        foreach (var address in addresses)
            AddAddress(client, index, address);
        return ns;
    }

    /// <summary>
    /// `ipvlan-cni ipam ARGS --config FILE` run in a node's namespace (it reaches etcd over that node's NIC), with
    /// the network's configuration written to a file of this lab.
    /// </summary>
    public ProgramResult Operator(ClusterNode node, JsonObject config, params string[] args)
    {
        string file = Path.Combine(Folder, $"{config["name"]}.conf");
        File.WriteAllText(file, config.ToJsonString());
        return Programs.Run(node.Namespace, CniRuntime.PluginPath, ["ipam", .. args, "--config", file], timeout: TimeSpan.FromSeconds(60));
    }

    ClusterNode BuildNode(int i)
    {
        var ns = CreateNamespace($"n{i}");
        DisableDad(ns);
        var client = RouteClient.OpenIn(ns);
        try
        {
            client.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
            int index = Connect(client, ns, Nic, $"n{i}");
            var address = IpPrefix.Parse($"10.77.0.{i}/24");
            AddAddress(client, index, address);
            AddAddress(client, index, IpPrefix.Parse($"fd77::{i}/64"));
            var node = new ClusterNode($"node{i}", $"n{i}", ns, client, new CniRuntime(ns), address.Address, $"{Folder}/node{i}");
            Directory.CreateDirectory(node.Folder);
            return node;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>A veth from <paramref name="ns"/> (its end named <paramref name="name"/>, up) to br0 (the other end, up, a bridge port).</summary>
    int Connect(RouteClient client, NetNamespace ns, string name, string wireEnd)
    {
        WireClient.CreateLink(new VethLinkSpec(wireEnd, name) { PeerNamespace = ns });
        int port = WireClient.GetLink(wireEnd).Index;
        WireClient.ChangeLink(port, new LinkChange { MasterIndex = BridgeIndex, Up = true });
        int index = client.GetLink(name).Index;
        client.ChangeLink(index, new LinkChange { Up = true });
        client.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
        return index;
    }

    /// <summary>Debian's etcd-server, one member, listening on the wire's address (data under this lab's folder).</summary>
    void StartEtcd()
    {
        const string binary = "/usr/bin/etcd";
        if (!File.Exists(binary))
            throw new FileNotFoundException($"{binary} is missing: `make deps` installs etcd-server");
        string peer = "http://127.0.0.1:2380";
        Etcd = Start(Wire, binary,
        [
            "--name", "m0", "--data-dir", $"{Folder}/etcd",
            "--listen-client-urls", EtcdEndpoint, "--advertise-client-urls", EtcdEndpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", $"m0={peer}", "--initial-cluster-state", "new", "--initial-cluster-token", Name,
            "--logger", "zap", "--log-level", "warn",
        ]);
        var deadline = Stopwatch.StartNew();
        while (!Wire.Run(EtcdHealthy))
        {
            if (Etcd.HasExited)
                throw new InvalidOperationException($"etcd exited with {Etcd.ExitCode}:\n{OutputOf(Etcd)}");
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
                throw new TimeoutException($"etcd was not healthy within 30 s at {EtcdEndpoint}:\n{OutputOf(Etcd)}");
            Thread.Sleep(100);
        }
    }

    /// <summary>
    /// Until etcd answers /health across the wire from the node's own namespace, not only on the bridge itself: the
    /// first ADD of a fresh lab (twice in about eight clean runs) found etcd silent from a node for more than 20 s.
    /// </summary>
    void WaitForEtcdFrom(ClusterNode node)
    {
        var deadline = Stopwatch.StartNew();
        while (!node.Namespace.Run(EtcdHealthy))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
                throw new TimeoutException($"etcd at {EtcdEndpoint} did not answer from {node.Name} within 60 s:\n{OutputOf(Etcd!)}");
            Thread.Sleep(100);
        }
    }

    /// <summary>GET /health on the client URL, from inside the namespace the thread that runs this is in.</summary>
    bool EtcdHealthy()
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 2000, SendTimeout = 2000 };
            var connect = socket.BeginConnect(new IPEndPoint(WireAddress, EtcdPort), null, null);
            if (!connect.AsyncWaitHandle.WaitOne(2000))
                return false;
            socket.EndConnect(connect);
            socket.Send(Encoding.ASCII.GetBytes("GET /health HTTP/1.0\r\nHost: etcd\r\n\r\n"));
            var answer = new StringBuilder();
            var buffer = new byte[1024];
            for (int n; (n = socket.Receive(buffer)) > 0;)
                answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
            return answer.ToString().Contains("\"health\":\"true\"", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The node's agent: the published `ipvlan-cni agent` in its namespace, with its own socket and log.</summary>
    public void StartAgent(ClusterNode node)
    {
        var agent = Start(node.Namespace, CniRuntime.PluginPath,
            ["agent", "--socket", node.AgentSocket, "--lease-dir", $"{node.Folder}/leases", "--log-file", node.AgentLog]);
        node.Agent = agent;
        var deadline = Stopwatch.StartNew();
        while (!(File.Exists(node.AgentLog) && File.ReadAllText(node.AgentLog).Contains($"listening on {node.AgentSocket} (pid {agent.Id}", StringComparison.Ordinal)))
        {
            if (agent.HasExited)
                throw new InvalidOperationException($"the agent of {node.Name} exited with {agent.ExitCode}:\n{OutputOf(agent)}\n{node.AgentLogText}");
            if (deadline.Elapsed > TimeSpan.FromSeconds(15))
                throw new TimeoutException($"the agent of {node.Name} did not listen within 15 s:\n{node.AgentLogText}");
            Thread.Sleep(50);
        }
    }

    /// <summary>SIGTERM by PID (as systemd stops it), SIGKILL if it has not exited within 10 s.</summary>
    public static void Terminate(Process process)
    {
        if (process.HasExited)
            return;
        using (var kill = Process.Start("/bin/kill", ["-TERM", process.Id.ToString()]))
            kill.WaitForExit();
        if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            process.Kill();
        process.WaitForExit();
    }

    Process Start(NetNamespace ns, string file, string[] args)
    {
        var process = Programs.Start(ns, file, args);
        _processes.Add(process);
        var lines = new List<string>();
        _output[process.Id] = lines;
        // Drain both pipes (a chatty child must never block), keeping the last lines for a failure message.
        void Keep(object? _, DataReceivedEventArgs e)
        {
            if (e.Data is not { } line)
                return;
            lock (lines)
            {
                lines.Add(line);
                if (lines.Count > 60)
                    lines.RemoveAt(0);
            }
        }
        process.OutputDataReceived += Keep;
        process.ErrorDataReceived += Keep;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    string OutputOf(Process process)
    {
        var lines = _output[process.Id];
        lock (lines)
            return string.Join('\n', lines);
    }

    static void AddAddress(RouteClient client, int link, IpPrefix address) =>
        client.AddAddress(new AddressInfo(link, address) { Flags = address.Family == AddressFamily.InterNetworkV6 ? AddressFlags.NoDad : AddressFlags.None });

    /// <summary>Links made later in the namespace skip IPv6 duplicate address detection (a second of waiting each).</summary>
    static void DisableDad(NetNamespace ns)
    {
        ns.WriteSysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.WriteSysctl("net.ipv6.conf.default.accept_dad", "0");
    }

    NetNamespace CreateNamespace(string role)
    {
        string name = $"{Name}-{role}";
        var ns = NetNamespace.CreateNamed(name);
        _namedNamespaces.Add(name);
        _namespaces.Add(ns);
        return ns;
    }

    public void Dispose()
    {
        // Agents first (they hold etcd connections), then etcd, each by its PID.
        foreach (var process in Enumerable.Reverse(_processes))
        {
            try
            {
                Terminate(process);
            }
            catch (InvalidOperationException)
            {
                // never started
            }
            process.Dispose();
        }
        foreach (var pod in _pods)
            pod.Dispose();
        foreach (var node in _nodes)
            node.Client.Dispose();
        WireClient?.Dispose();
        foreach (var ns in _namespaces)
            ns.Dispose();
        // Deleting a namespace's mount frees it and its links (and a veth's peer with it).
        foreach (string name in _namedNamespaces)
            NetNamespace.DeleteNamed(name);
        if (Directory.Exists(Folder))
            Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>One simulated node of a <see cref="ClusterLab"/>: its namespace, NIC address, runtime, agent and folders.</summary>
public sealed class ClusterNode(string name, string shortName, NetNamespace ns, RouteClient client, CniRuntime cni, IPAddress address, string folder)
{
    /// <summary>The node name the IPAM records ("node1").</summary>
    public string Name { get; } = name;
    public string Short { get; } = shortName;
    public NetNamespace Namespace { get; } = ns;
    public RouteClient Client { get; } = client;
    public CniRuntime Cni { get; } = cni;
    /// <summary>The node's own address on ens10.</summary>
    public IPAddress Address { get; } = address;
    public string Folder { get; } = folder;
    public string StateDir => $"{Folder}/state";
    public string IpamDir => $"{Folder}/ipam";
    public string AgentSocket => $"{Folder}/agent.sock";
    public string AgentLog => $"{Folder}/agent.log";
    public Process? Agent { get; internal set; }
    public string AgentLogText => File.Exists(AgentLog) ? File.ReadAllText(AgentLog) : "(no agent log)";
    public LinkInfo NicLink => Client.GetLink(ClusterLab.Nic);
}
