using System.Diagnostics;
using System.Text;
using System.Text.Json;
using IpvlanCni.Agent;
using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>
/// The plugin's IPAM type "ipvlan-cni-ipam" asking a real agent (its socket, its cluster-ipam service) that asks a
/// real etcd: what a runtime's ADD/DEL/CHECK/GC does, minus the ipvlan link.
/// </summary>
public sealed class AgentPathTests : IClassFixture<SingleEtcd>, IDisposable
{
    readonly SingleEtcd _etcd;
    readonly string _dir = Directory.CreateTempSubdirectory("ipvlan-cni-agent-").FullName;
    readonly CancellationTokenSource _stop = new();
    readonly Thread _agent;
    readonly AgentLog _log;
    readonly List<IAgentService> _services;

    string Socket => Path.Combine(_dir, "agent.sock");

    public AgentPathTests(SingleEtcd etcd)
    {
        _etcd = etcd;
        _log = new AgentLog(Path.Combine(_dir, "agent.log"));
        _services = [ClusterIpamService.Create(_log)];
        var server = new AgentServer(new AgentOptions { SocketPath = Socket, LeaseDirectory = Path.Combine(_dir, "leases") }, _log, _services);
        _agent = new Thread(() => { using (server) server.Run(_stop.Token); }) { IsBackground = true };
        _agent.Start();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _agent.Join(5000);
        foreach (var s in _services)
            s.Dispose();
        _log.Dispose();
        Directory.Delete(_dir, true);
    }

    CniRequest Request(CniCommand command, string network, string containerId, string extra = "", string? endpoints = null, string? socket = null, string cniArgs = "")
    {
        string json = "{\"cniVersion\":\"1.1.0\",\"name\":\"" + network + "\",\"type\":\"ipvlan\",\"ipam\":{\"type\":\"ipvlan-cni-ipam\",\"node\":\"n1\"," +
            "\"agentSocket\":\"" + (socket ?? Socket) + "\",\"etcdEndpoints\":[" + (endpoints ?? _etcd.Cluster.EndpointsJson) + "]," +
            "\"ranges\":[[{\"subnet\":\"10.20.0.0/24\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}]" + extra + "}}";
        var request = new CniRequest
        {
            Command = command,
            Args = CniArgs.Parse(cniArgs),
            ConfigBytes = Encoding.UTF8.GetBytes(json),
            Config = new NetworkConfig { CniVersion = "1.1.0", Name = NetworkName.Parse(network, "name"), Type = "ipvlan" },
        };
        // GC and STATUS name no attachment.
        return containerId.Length == 0 ? request
            : request with { ContainerId = ContainerId.Parse(containerId, "CNI_CONTAINERID"), IfName = InterfaceName.Parse("eth0", "CNI_IFNAME") };
    }

    static IIpam Ipam(CniRequest r)
    {
        using var doc = JsonDocument.Parse(r.ConfigBytes);
        return IpamFactory.Create(doc.RootElement.GetProperty("ipam").Clone(), r);
    }

    [Fact]
    public void AddDelCheckGcThroughTheAgent()
    {
        var add = Request(CniCommand.Add, "agentnet", "c1", cniArgs: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p1;K8S_POD_UID=u1");
        var result = Ipam(add).Allocate(add);
        var ip = Assert.Single(result.Ips);
        Assert.Equal(24, ip.Address.PrefixLength);
        Assert.Equal("10.20.0.1", IpMath.Format(ip.Gateway!));
        Assert.Single(result.Routes);
        // A repeated ADD returns the same; a different pod UID for the same attachment is refused.
        Assert.Equal(ip.Address, Ipam(add).Allocate(add).Ips[0].Address);
        var other = Request(CniCommand.Add, "agentnet", "c1", cniArgs: "K8S_POD_UID=u2");
        Assert.Equal(CniErrorCode.AlreadyExists, Assert.Throws<CniException>(() => Ipam(other).Allocate(other)).Code);
        var check = Request(CniCommand.Check, "agentnet", "c1") with { Config = add.Config with { PrevResult = result } };
        Ipam(check).Check(check);

        var add2 = Request(CniCommand.Add, "agentnet", "c2", extra: ",\"gcGraceSeconds\":0");
        Ipam(add2).Allocate(add2);
        var gc = Request(CniCommand.Gc, "agentnet", "", extra: ",\"gcGraceSeconds\":0");
        Ipam(gc).GarbageCollect(gc, [new GcAttachment("c1", "eth0")]);
        Assert.Equal(CniErrorCode.UnknownContainer, Assert.Throws<CniException>(() => Ipam(add2).Allocate(add2)).Code);

        var del = Request(CniCommand.Del, "agentnet", "c1");
        Ipam(del).Release(del);
        Ipam(del).Release(del);
        Assert.Equal(CniErrorCode.CheckFailed, Assert.Throws<CniException>(() => Ipam(check).Check(check)).Code);
        var status = Request(CniCommand.Status, "agentnet", "");
        Ipam(status).Status(status);
    }

    [Fact]
    public void NoAgentIsCode11NamingHowToStartIt()
    {
        var add = Request(CniCommand.Add, "noagent", "c1", socket: Path.Combine(_dir, "absent.sock"));
        var e = Assert.Throws<CniException>(() => Ipam(add).Allocate(add));
        Assert.Equal(CniErrorCode.TryAgainLater, e.Code);
        Assert.Contains("start it with `ipvlan-cni agent`", e.Message);
    }

    [Fact]
    public void EtcdUnreachableIsCode11WithinTheDeadlineAndNothingIsAllocated()
    {
        var add = Request(CniCommand.Add, "downnet", "c1", extra: ",\"timeoutSeconds\":2", endpoints: "\"http://127.0.0.1:1\"");
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<CniException>(() => Ipam(add).Allocate(add));
        Assert.Equal(CniErrorCode.TryAgainLater, e.Code);
        Assert.Contains("nothing was allocated", e.Message);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 3.5);
        // DEL fails too (the runtime retries it).
        var del = Request(CniCommand.Del, "downnet", "c1", extra: ",\"timeoutSeconds\":2", endpoints: "\"http://127.0.0.1:1\"");
        Assert.Equal(CniErrorCode.TryAgainLater, Assert.Throws<CniException>(() => Ipam(del).Release(del)).Code);
        using var store = new EtcdKvStore(TestConfig.Parse("n1", """[[{"subnet":"10.20.0.0/24"}]]""", endpoints: _etcd.Cluster.EndpointsJson, network: "downnet"));
        Assert.Equal(0, store.Read([Read.Under("/ipvlan-cni/ipam/v1/downnet/")], TestConfig.Soon).Count);
    }

    [Fact]
    public void BadConfigIsRefusedBeforeAskingTheAgent()
    {
        var add = Request(CniCommand.Add, "bad", "c1", extra: ",\"blockSize\":6", socket: Path.Combine(_dir, "absent.sock"));
        var e = Assert.Throws<CniException>(() => Ipam(add));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Contains("ipam.blockSize", e.Message);
    }
}

/// <summary>The published binary under its second name, run as a runtime runs an IPAM plugin (env + stdin).</summary>
public sealed class StandaloneBinaryTests(SingleEtcd etcd, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<SingleEtcd>
{
    static string Binary => Published("ipvlan-cni-ipam");

    static string Published(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "IpvlanCni.slnx")))
            dir = dir.Parent;
        var path = Path.Combine(dir?.FullName ?? "/", "artifacts/cni/bin", name);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: run `make publish`");
    }

    /// <summary>
    /// The published agent (NativeAOT, the etcd client inside), started as the unit starts it (`ipvlan-cni agent`,
    /// which execs ipvlan-cni-agent), and the published standalone plugin asking it; stopped by PID with SIGTERM.
    /// </summary>
    [Fact]
    public void PublishedAgentAndPluginAgainstEtcd()
    {
        var dir = Directory.CreateTempSubdirectory("ipvlan-cni-published-").FullName;
        var socket = Path.Combine(dir, "agent.sock");
        var psi = new ProcessStartInfo(Published("ipvlan-cni")) { UseShellExecute = false };
        foreach (var a in new[] { "agent", "--socket", socket, "--lease-dir", Path.Combine(dir, "leases"), "--log-file", Path.Combine(dir, "agent.log") })
            psi.ArgumentList.Add(a);
        using var agent = Process.Start(psi)!;
        try
        {
            for (int i = 0; i < 100 && !File.Exists(socket); i++)
                Thread.Sleep(50);
            Assert.True(File.Exists(socket), "the published agent did not open its socket: " + (File.Exists(Path.Combine(dir, "agent.log")) ? File.ReadAllText(Path.Combine(dir, "agent.log")) : "no log"));
            string config = "{\"cniVersion\":\"1.1.0\",\"name\":\"published\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"ipvlan-cni-ipam\",\"node\":\"n1\"," +
                "\"agentSocket\":\"" + socket + "\",\"etcdEndpoints\":[" + etcd.Cluster.EndpointsJson + "],\"ranges\":[[{\"subnet\":\"10.41.0.0/24\"}]]}}";
            Assert.Equal(0, Exec("ADD", "warm", config, socket).Code);
            var clock = Stopwatch.StartNew();
            var seen = new HashSet<string>();
            for (int i = 0; i < 20; i++)
            {
                var add = Exec("ADD", $"p{i}", config, socket);
                Assert.Equal(0, add.Code);
                using var doc = JsonDocument.Parse(add.Out);
                Assert.True(seen.Add(doc.RootElement.GetProperty("ips")[0].GetProperty("address").GetString()!));
            }
            output.WriteLine($"published ipvlan-cni-ipam ADD through the published agent: {clock.Elapsed.TotalMilliseconds / 20:0.0} ms per process");
            for (int i = 0; i < 20; i++)
                Assert.Equal(0, Exec("DEL", $"p{i}", config, socket).Code);
            Assert.Equal(agent.Id, agent.Id); // the exec kept the PID: the signal below reaches the agent itself
        }
        finally
        {
            Kill(agent.Id, 15);
            Assert.True(agent.WaitForExit(10_000), "the agent did not stop on SIGTERM");
            Directory.Delete(dir, true);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    static extern int Kill(int pid, int signal);

    (int Code, string Out) Exec(string command, string containerId, string config, string socket)
    {
        var psi = new ProcessStartInfo(Binary) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.Environment.Clear();
        psi.Environment["CNI_COMMAND"] = command;
        psi.Environment["CNI_CONTAINERID"] = containerId;
        psi.Environment["CNI_NETNS"] = "/var/run/netns/none";
        psi.Environment["CNI_IFNAME"] = "eth0";
        psi.Environment["CNI_PATH"] = "/opt/cni/bin";
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(config);
        p.StandardInput.Close();
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(30_000));
        return (p.ExitCode, output);
    }

    [Fact]
    public void TheSecondNameIsAStandaloneIpamPlugin()
    {
        var dir = Directory.CreateTempSubdirectory("ipvlan-cni-standalone-").FullName;
        var socket = Path.Combine(dir, "agent.sock");
        using var log = new AgentLog(Path.Combine(dir, "agent.log"));
        var services = new List<IAgentService> { ClusterIpamService.Create(log) };
        using var stop = new CancellationTokenSource();
        var server = new AgentServer(new AgentOptions { SocketPath = socket, LeaseDirectory = Path.Combine(dir, "leases") }, log, services);
        var agent = new Thread(() => { using (server) server.Run(stop.Token); }) { IsBackground = true };
        agent.Start();
        try
        {
            string config = "{\"cniVersion\":\"1.0.0\",\"name\":\"standalone\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"ipvlan-cni-ipam\",\"node\":\"n1\"," +
                "\"agentSocket\":\"" + socket + "\",\"etcdEndpoints\":[" + etcd.Cluster.EndpointsJson + "],\"ranges\":[[{\"subnet\":\"10.40.0.0/24\",\"gateway\":\"10.40.0.254\"}]]}}";
            var add = Exec("ADD", "s1", config, socket);
            Assert.Equal(0, add.Code);
            using (var doc = JsonDocument.Parse(add.Out))
            {
                Assert.Equal("1.0.0", doc.RootElement.GetProperty("cniVersion").GetString());
                var ip = Assert.Single(doc.RootElement.GetProperty("ips").EnumerateArray());
                Assert.StartsWith("10.40.0.", ip.GetProperty("address").GetString());
                Assert.Equal("10.40.0.254", ip.GetProperty("gateway").GetString());
            }
            Assert.Equal(add.Out, Exec("ADD", "s1", config, socket).Out);
            Assert.Equal(0, Exec("DEL", "s1", config, socket).Code);
            Assert.Equal(0, Exec("DEL", "s1", config, socket).Code);
            // No agent: the spec's error JSON, code 11, saying how to start it.
            var absent = Exec("ADD", "s2", config.Replace(socket, Path.Combine(dir, "absent.sock")), socket);
            Assert.NotEqual(0, absent.Code);
            using (var doc = JsonDocument.Parse(absent.Out))
            {
                Assert.Equal(11, doc.RootElement.GetProperty("code").GetInt32());
                Assert.Contains("ipvlan-cni agent", doc.RootElement.GetProperty("msg").GetString());
            }
        }
        finally
        {
            stop.Cancel();
            agent.Join(5000);
            foreach (var s in services)
                s.Dispose();
            Directory.Delete(dir, true);
        }
    }
}
