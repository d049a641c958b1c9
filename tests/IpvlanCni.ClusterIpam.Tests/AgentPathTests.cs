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
        return new CniRequest
        {
            Command = command,
            ContainerId = containerId,
            IfName = "eth0",
            Args = CniArgs.Parse(cniArgs),
            ConfigBytes = Encoding.UTF8.GetBytes(json),
            Config = new NetworkConfig { CniVersion = "1.1.0", Name = network, Type = "ipvlan" },
        };
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
