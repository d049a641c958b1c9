using System.Diagnostics;
using System.Text.Json;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>A one-member etcd that serves https only and demands a client certificate its CA signed; the published agent asks it.</summary>
public sealed class TlsEtcd : IDisposable
{
    public TestPki Pki { get; } = new();
    public EtcdCluster Cluster { get; }
    public AgentProcess Agent { get; }

    public TlsEtcd()
    {
        Cluster = new EtcdCluster(1, Pki);
        Agent = new AgentProcess("tls");
    }

    public void Dispose()
    {
        Agent.Dispose();
        Cluster.Dispose();
        Pki.Dispose();
    }
}

/// <summary>
/// etcd with --cert-file/--key-file/--trusted-ca-file/--client-cert-auth on https loopback, the published agent and
/// the published standalone plugin: ADD/DEL work with etcdCaFile/etcdCertFile/etcdKeyFile; a wrong CA, no client
/// certificate or one another CA signed fail with code 11 naming the key to fix, within timeoutSeconds.
/// </summary>
public sealed class TlsTests(TlsEtcd etcd) : IClassFixture<TlsEtcd>
{
    string Config(string network, string tlsKeys, int timeoutSeconds = 10) =>
        "{\"cniVersion\":\"1.1.0\",\"name\":\"" + network + "\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"ipvlan-cni-ipam\",\"node\":\"n1\"," +
        "\"agentSocket\":\"" + etcd.Agent.Socket + "\",\"etcdEndpoints\":[" + etcd.Cluster.EndpointsJson + "],\"timeoutSeconds\":" + timeoutSeconds +
        (tlsKeys.Length > 0 ? "," + tlsKeys : "") + ",\"ranges\":[[{\"subnet\":\"10.42.0.0/24\"}]]}}";

    [Fact]
    public void AddAndDelOverMutualTls()
    {
        Assert.StartsWith("https://", etcd.Cluster.Members[0].ClientUrl);
        string config = Config("tls", etcd.Cluster.ClientKeys);
        var add = Published.Plugin("ADD", "t1", config);
        Assert.True(add.Code == 0, add.Out + "\n" + etcd.Agent.Log);
        string address;
        using (var doc = JsonDocument.Parse(add.Out))
            address = doc.RootElement.GetProperty("ips")[0].GetProperty("address").GetString()!;
        Assert.StartsWith("10.42.0.", address);
        Assert.Equal(add.Out, Published.Plugin("ADD", "t1", config).Out);
        // What etcd holds, read over TLS by the test's own client: the attachment and its address key.
        var direct = TestConfig.Parse("n1", """[[{"subnet":"10.42.0.0/24"}]]""", etcd.Cluster.ClientKeys, etcd.Cluster.EndpointsJson, "tls");
        using var store = new EtcdKvStore(direct);
        var view = ClusterView.Read(store, direct, TestConfig.Soon);
        Assert.Equal(address, Ipam.IpMath.Format(Assert.Single(view.LiveAttachments).Record.Addresses[0].Address));
        Assert.Empty(view.Check());
        Assert.Equal(0, Published.Plugin("DEL", "t1", config).Code);
        Assert.Empty(ClusterView.Read(store, direct, TestConfig.Soon).LiveAttachments);
    }

    [Theory]
    [InlineData("wrong CA", "etcdCaFile")]
    [InlineData("no client certificate", "etcdCertFile")]
    [InlineData("client certificate of another CA", "etcdCertFile")]
    public void RefusedTlsIsCode11NamingTheKey(string what, string key)
    {
        var pki = etcd.Pki;
        string keys = what switch
        {
            "wrong CA" => $"\"etcdCaFile\":\"{pki.OtherCaFile}\",\"etcdCertFile\":\"{pki.ClientCertFile}\",\"etcdKeyFile\":\"{pki.ClientKeyFile}\"",
            "no client certificate" => $"\"etcdCaFile\":\"{pki.CaFile}\"",
            _ => $"\"etcdCaFile\":\"{pki.CaFile}\",\"etcdCertFile\":\"{pki.StrangerCertFile}\",\"etcdKeyFile\":\"{pki.StrangerKeyFile}\"",
        };
        string network = "tlsbad" + key.Length + what.Length;
        var clock = Stopwatch.StartNew();
        var add = Published.Plugin("ADD", "b1", Config(network, keys, timeoutSeconds: 30));
        double seconds = clock.Elapsed.TotalSeconds;
        Assert.NotEqual(0, add.Code);
        using var doc = JsonDocument.Parse(add.Out);
        Assert.Equal(11, doc.RootElement.GetProperty("code").GetInt32());
        string message = doc.RootElement.GetProperty("msg").GetString()!;
        Assert.True(message.Contains($"ipam.{key}"), message);
        Assert.Contains("nothing was allocated", message);
        // Refused in the handshake: no waiting for the 30 s deadline, since no retry would mend a certificate (the
        // margin is for a loaded machine; waiting out the deadline would take 30 s).
        Assert.InRange(seconds, 0, 15);
        using var store = new EtcdKvStore(TestConfig.Parse("n1", """[[{"subnet":"10.42.0.0/24"}]]""", etcd.Cluster.ClientKeys, etcd.Cluster.EndpointsJson, network));
        Assert.Equal(0, store.Read([Read.Under($"/ipvlan-cni/ipam/v1/{network}/")], TestConfig.Soon).Count);
    }
}
