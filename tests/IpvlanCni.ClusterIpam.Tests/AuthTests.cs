using System.Diagnostics;
using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>
/// etcd's own authentication (etcdUsername, etcdPassword) on a member with auth enabled and tokens that expire after
/// a second of idleness, as an agent's connection sits idle between ADDs.
/// </summary>
public sealed class AuthTests
{
    [Fact]
    public void UserAndPasswordAndAnExpiredTokenAndAWrongPassword()
    {
        using var cluster = new EtcdCluster(1, null, "--auth-token-ttl", "1");
        using (var admin = new dotnet_etcd.EtcdClient(Grpc.Net.Client.GrpcChannel.ForAddress(cluster.Members[0].ClientUrl).CreateCallInvoker()))
        {
            var d = DateTime.UtcNow.AddSeconds(5);
            admin.UserAdd(new Etcdserverpb.AuthUserAddRequest { Name = "root", Password = "s3cret" }, null, d);
            admin.UserGrantRole(new Etcdserverpb.AuthUserGrantRoleRequest { User = "root", Role = "root" }, null, d);
            admin.AuthEnable(new Etcdserverpb.AuthEnableRequest(), null, d);
        }
        string ranges = """[[{"subnet":"10.43.0.0/24"}]]""";
        // Without credentials etcd refuses every request.
        var anonymous = Parse("n1", ranges, "\"timeoutSeconds\":2", cluster.EndpointsJson, "auth");
        using (var store = new EtcdKvStore(anonymous))
            Assert.ThrowsAny<StoreUnavailableException>(() => new ClusterIpamEngine(store).Add(anonymous, Att("n1", "a0"), DateTimeOffset.UtcNow.AddSeconds(2)));

        var config = Parse("n1", ranges, "\"etcdUsername\":\"root\",\"etcdPassword\":\"s3cret\"", cluster.EndpointsJson, "auth");
        using (var store = new EtcdKvStore(config))
        {
            var engine = new ClusterIpamEngine(store);
            var first = engine.Add(config, Att("n1", "a1"), Soon);
            // Idle past the token's TTL: the store asks for a new token and the ADD succeeds.
            Thread.Sleep(2500);
            var second = engine.Add(config, Att("n1", "a2"), Soon);
            Assert.NotEqual(first.Addresses[0].Address, second.Addresses[0].Address);
            engine.Release(config, Att("n1", "a1"), Soon);
            Assert.Single(ClusterView.Read(store, config, Soon).LiveAttachments);
        }

        // A wrong password: refused at once (no waiting for the deadline), naming the keys.
        var wrong = Parse("n1", ranges, "\"etcdUsername\":\"root\",\"etcdPassword\":\"guess\",\"timeoutSeconds\":30", cluster.EndpointsJson, "auth");
        using (var store = new EtcdKvStore(wrong))
        {
            var clock = Stopwatch.StartNew();
            var e = Assert.Throws<StoreRefusedException>(() => new ClusterIpamEngine(store).Add(wrong, Att("n1", "a3"), DateTimeOffset.UtcNow.AddSeconds(30)));
            Assert.Contains("ipam.etcdUsername and ipam.etcdPassword", e.Message);
            // Not the 30 s deadline (the margin is for a loaded machine: etcd checks a password with bcrypt).
            Assert.InRange(clock.Elapsed.TotalSeconds, 0, 15);
        }
        // ... and a corrected password is a new connection of the agent, not the refused one.
        Assert.NotEqual(wrong.ConnectionKey, config.ConnectionKey);
    }
}
