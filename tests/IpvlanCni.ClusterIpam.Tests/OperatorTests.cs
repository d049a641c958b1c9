using System.Text.Json;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>`ipvlan-cni ipam show|check|release|forget` against a real etcd, on a conflist as operators have it.</summary>
public sealed class OperatorTests(SingleEtcd etcd) : IClassFixture<SingleEtcd>, IDisposable
{
    readonly string _file = Path.Combine(Directory.CreateTempSubdirectory("ipvlan-cni-ops-").FullName, "10-ops.conflist");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_file)!, true);

    (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = IpamCommand.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void ShowCheckReleaseForget()
    {
        File.WriteAllText(_file, "{\"cniVersion\":\"1.1.0\",\"name\":\"ops\",\"plugins\":[{\"type\":\"ipvlan\",\"master\":\"eth0\",\"ipam\":{\"type\":\"ipvlan-cni-ipam\"," +
            "\"etcdEndpoints\":[" + etcd.Cluster.EndpointsJson + "],\"blockSize\":4,\"maxBlocksPerNode\":1,\"ranges\":[[{\"subnet\":\"10.30.0.0/28\"}]]}}]}");
        var n1 = Parse("n1", """[[{"subnet":"10.30.0.0/28"}]]""", "\"blockSize\":4,\"maxBlocksPerNode\":1", etcd.Cluster.EndpointsJson, "ops");
        var n2 = n1 with { Node = "n2" };
        using var store = new EtcdKvStore(n1);
        var engine = new ClusterIpamEngine(store);
        for (int i = 0; i < 5; i++) // more than n1's one block: it borrows
            engine.Add(n1, Att("n1", $"a{i}") with { PodNamespace = "default", PodName = $"pod{i}" }, Soon);
        var n2Address = engine.Add(n2, Att("n2", "b0"), Soon).Addresses[0].Address.Address;

        var show = Run("show", "--config", _file);
        Assert.Equal(0, show.Code);
        Assert.Contains("6 allocation(s)", show.Out);
        Assert.Contains("default/pod0", show.Out);
        Assert.Contains("borrowed", show.Out);
        var json = Run("show", "--config", _file, "--node", "n2", "--json");
        using (var doc = JsonDocument.Parse(json.Out))
        {
            var only = Assert.Single(doc.RootElement.GetProperty("allocations").EnumerateArray());
            Assert.Equal(IpMath.Format(n2Address), only.GetProperty("address").GetString());
            Assert.Equal("n2", only.GetProperty("node").GetString());
        }
        var check = Run("check", "--config", _file);
        Assert.Equal(0, check.Code);
        Assert.Contains("consistent", check.Out);

        // A leaked address key (as a buggy writer would leave): check finds it, release removes it.
        var keys = new KeyLayout(n1.KeyPrefix, "ops");
        var leaked = System.Net.IPAddress.Parse("10.30.0.14");
        Assert.True(store.Commit(new Txn([Compare.Absent(keys.IpKey(leaked))], [Write.Put(keys.IpKey(leaked), "{\"attachment\":\"n9/x/eth0\"}")], []), Soon).Succeeded);
        var bad = Run("check", "--config", _file, "--json");
        Assert.Equal(1, bad.Code);
        Assert.Contains("leaked", bad.Out);
        Assert.Equal(0, Run("release", "--config", _file, "--address", "10.30.0.14").Code);
        Assert.Equal(0, Run("check", "--config", _file).Code);

        // Releasing a live address frees its attachment (and fences it like a DEL).
        var first = engine.Get(n1, Att("n1", "a0"), Soon)!.Addresses[0].Address.Address;
        var released = Run("release", "--config", _file, "--address", IpMath.Format(first));
        Assert.Contains("n1/a0/eth0", released.Out);
        Assert.False(engine.Get(n1, Att("n1", "a0"), Soon)!.Live);

        // Forget n2: its allocation and block go; n1 is untouched.
        var forget = Run("forget", "--config", _file, "--node", "n2");
        Assert.Contains("released 1 attachment(s), 1 block(s)", forget.Out);
        Assert.DoesNotContain("n2", Run("show", "--config", _file).Out.Split('\n').Skip(2).FirstOrDefault() ?? "");
        Assert.Contains("4 allocation(s)", Run("show", "--config", _file).Out);
        Assert.Equal(0, Run("check", "--config", _file).Code);

        Assert.Equal(2, Run("release", "--config", _file).Code); // usage
        Assert.Equal(1, Run("show", "--config", "/nonexistent").Code);
    }
}
