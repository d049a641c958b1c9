using System.Net;
using System.Text;
using IpvlanCni.Agent;
using IpvlanCni.Cni;
using IpvlanCni.Dhcp;
using IpvlanCni.Network;

namespace IpvlanCni.Dhcp.Tests;

public class AgentTests
{
    static DhcpLease Lease(DateTimeOffset at) => new()
    {
        Address = IpPrefix.Parse("10.10.0.150/24"),
        ServerId = IPAddress.Parse("10.10.0.254"),
        Router = IPAddress.Parse("10.10.0.254"),
        DnsServers = [IPAddress.Parse("10.10.0.254")],
        DomainName = "biz.test",
        ClasslessRoutes = [new DhcpRoute(IpPrefix.Parse("192.168.50.0/24"), IPAddress.Parse("10.10.0.1"))],
        AcquiredAt = at,
        RenewAt = at.AddSeconds(60),
        RebindAt = at.AddSeconds(105),
        ExpiresAt = at.AddSeconds(120),
    };

    [Theory]
    [InlineData("file")]
    [InlineData("symlink")]
    public void The_agent_replaces_only_a_stale_socket_at_its_path(string what)
    {
        var dir = Directory.CreateTempSubdirectory("ipvlan-cni-agent-").FullName;
        try
        {
            string victim = Path.Combine(dir, "victim"), socket = Path.Combine(dir, "agent.sock");
            File.WriteAllText(victim, "keep me");
            if (what == "file")
                File.Move(victim, socket);
            else
                File.CreateSymbolicLink(socket, victim);
            using var log = new AgentLog(null);

            var e = Assert.Throws<InvalidOperationException>(() => new AgentServer(new AgentOptions { SocketPath = socket, LeaseDirectory = Path.Combine(dir, "leases") }, log, []));

            Assert.Contains("is not a socket", e.Message);
            Assert.Equal("keep me", File.ReadAllText(socket));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_lease_survives_the_disk_as_it_was_and_a_lost_one_stays_lost()
    {
        string dir = Path.Join(Path.GetTempPath(), $"leases-{Guid.NewGuid():N}");
        try
        {
            var store = new LeaseStore(dir);
            var at = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
            var identity = new ClientIdentity("net1", "c1", "eth0");
            store.Save(new StoredLease(identity, "/run/netns/p1", [2, 0, 0, 0, 0, 1], Lease(at), null));
            store.Save(new StoredLease(new ClientIdentity("net1", "c2", "eth0"), "/run/netns/p2", [2, 0, 0, 0, 0, 1], Lease(at), "NAK"));
            File.WriteAllText(Path.Join(dir, "garbage.lease"), "{not json");
            var problems = new List<string>();

            var loaded = store.LoadAll(problems.Add).OrderBy(l => l.Identity.ContainerId).ToList();
            Assert.Equal(2, loaded.Count);
            Assert.Single(problems);
            var back = loaded[0];
            Assert.Equal("net1/c1/eth0", back.Identity.ToString());
            Assert.Equal(identity.ClientId, back.Identity.ClientId);
            Assert.Equal("/run/netns/p1", back.NetnsPath);
            var expected = Lease(at);
            Assert.Equal((expected.Address, expected.ServerId, expected.Router, expected.DomainName, expected.AcquiredAt, expected.RenewAt, expected.RebindAt, expected.ExpiresAt),
                (back.Lease.Address, back.Lease.ServerId, back.Lease.Router, back.Lease.DomainName, back.Lease.AcquiredAt, back.Lease.RenewAt, back.Lease.RebindAt, back.Lease.ExpiresAt));
            Assert.Equal(expected.DnsServers, back.Lease.DnsServers);
            Assert.Equal(expected.ClasslessRoutes, back.Lease.ClasslessRoutes);
            Assert.Null(back.LostReason);
            Assert.Equal("NAK", loaded[1].LostReason);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

            store.Remove(identity);
            Assert.Single(store.LoadAll(_ => { }));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_lease_file_renamed_to_another_identity_is_refused()
    {
        string dir = Path.Join(Path.GetTempPath(), $"leases-{Guid.NewGuid():N}");
        try
        {
            var store = new LeaseStore(dir);
            var identity = new ClientIdentity("net1", "c1", "eth0");
            store.Save(new StoredLease(identity, "/run/netns/p1", [2, 0, 0, 0, 0, 1], Lease(DateTimeOffset.UnixEpoch), null));
            File.Move(Path.Join(dir, identity.Key + ".lease"), Path.Join(dir, new ClientIdentity("net1", "c9", "eth0").Key + ".lease"));
            var problems = new List<string>();
            Assert.Empty(store.LoadAll(problems.Add));
            Assert.Contains("net1/c1/eth0", Assert.Single(problems));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Requests_and_answers_are_one_line_each_and_a_refusal_comes_back_as_the_cni_error()
    {
        var line = AgentProtocol.Request("dhcp", "add", w => w.WriteString("network", "net1"));
        Assert.Equal((byte)'\n', line[^1]);
        Assert.DoesNotContain((byte)'\n', line[..^1]);
        var request = AgentRequest.Parse(line.AsMemory(0, line.Length - 1));
        Assert.Equal(("dhcp", "add", "net1"), (request.Service, request.Op, request.Args.GetString("network")));

        var failure = AgentProtocol.Failure(11, "busy");
        var e = Assert.Throws<CniException>(() => AgentProtocol.ReadResponse(failure.AsMemory(0, failure.Length - 1)));
        Assert.Equal((11, "busy"), (e.Code, e.Message));
        var ok = AgentProtocol.Success(w => w.WriteNumberValue(5));
        Assert.Equal(5, AgentProtocol.ReadResponse(ok.AsMemory(0, ok.Length - 1))!.Value.GetInt32());
    }

    [Theory]
    [InlineData("""{"op":"add"}""", "service")]
    [InlineData("""{"service":"dhcp"}""", "op")]
    [InlineData("""[1]""", "object")]
    [InlineData("""{"service":"dhcp","op":"add","args":{"network":"net1","containerId":"../x","ifName":"eth0","netns":"/n"}}""", "containerId")]
    [InlineData("""{"service":"dhcp","op":"add","args":{"network":"net1","containerId":"c1","ifName":"a/b","netns":"/n"}}""", "ifName")]
    public void Hostile_requests_are_refused_naming_the_field(string json, string field)
    {
        var e = Assert.Throws<CniException>(() =>
        {
            var request = AgentRequest.Parse(Encoding.UTF8.GetBytes(json));
            DhcpService.ParseIdentity(request.Args);
        });
        Assert.Contains(field, e.Message);
    }
}

public class LeaseStoreEdgeTests
{
    [Fact]
    public void Removing_from_a_folder_never_created_is_not_an_error() =>
        new LeaseStore(Path.Join(Path.GetTempPath(), $"absent-{Guid.NewGuid():N}")).Remove(new ClientIdentity("n", "c", "eth0"));
}
