using System.Collections.Concurrent;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>Many plugin processes at once on one master and network: the node-wide lock keeps them apart.</summary>
public class ConcurrencyTests : KernelTest
{
    /// <summary>Runs every action on its own thread at once and waits for all; the first failure is rethrown.</summary>
    static void AllAtOnce(IEnumerable<Action> actions)
    {
        var errors = new ConcurrentQueue<Exception>();
        var threads = actions.Select(action => new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (!errors.IsEmpty)
            throw new AggregateException(errors);
    }

    static IpPrefix AddressOf(CniCall added) => IpPrefix.Parse(added.Json.GetProperty("ips")[0].GetProperty("address").GetString()!);

    /// <summary>
    /// 50 ADDs at once: 50 distinct addresses, each really on its pod's eth0. Reachability is sampled, not all pairs
    /// (2450 pings are minutes on one UML CPU): the pods form a ring and each pings the next, so every pod sends one
    /// ping and answers one.
    /// </summary>
    [Fact]
    public void Fifty_parallel_adds_get_distinct_addresses_and_reach_each_other()
    {
        const int count = 50;
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("par", "10.10.0.0/24");
        var pods = Enumerable.Range(0, count).Select(_ => node.AddPod()).ToList();
        var added = new CniCall[count];

        AllAtOnce(Enumerable.Range(0, count).Select(i => (Action)(() => added[i] = cni.Add(config, pods[i], $"c{i}").Succeeded())));

        var addresses = added.Select(AddressOf).ToList();
        Assert.Equal(count, addresses.Select(a => a.Address).Distinct().Count());
        for (int i = 0; i < count; i++)
        {
            var eth0 = pods[i].Client.GetLink("eth0");
            Assert.Contains(addresses[i], pods[i].Client.ListAddresses(linkIndex: eth0.Index).Select(a => a.Prefix));
        }
        var unreachable = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int j = (i + 1) % count;
            if (!pods[i].Ping(addresses[j].Address))
                unreachable.Add($"c{i} -> c{j} ({addresses[j].Address})");
        }
        Assert.True(unreachable.Count == 0, $"no reply: {string.Join(", ", unreachable)}");

        AllAtOnce(Enumerable.Range(0, count).Select(i => (Action)(() => cni.Del(config, pods[i], $"c{i}").Succeeded())));
        Assert.Empty(Residue.Files(cni));
    }

    /// <summary>
    /// Rounds of ADD and DEL at once (each round ADDs a new group while the previous group is DELeted), with host access
    /// (shared host-side slave, per-pod host routes): after every round the live pods hold distinct addresses and one
    /// host route each, and at the end the node is as before. (NAT is left out: its iptables processes would make this
    /// minutes long on one UML CPU; the crash and soak tests cover its rules.)
    /// </summary>
    [Fact]
    public void Add_del_storms_leave_no_duplicate_and_no_leak()
    {
        const int rounds = 3, group = 8;
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "storm");
        config.Remove("ipMasq");
        var warm = node.AddPod();
        cni.Add(config, warm, "warm").Succeeded();
        cni.Del(config, warm, "warm").Succeeded();
        var before = NodeSnapshot.Take(node);
        int linksBefore = before.Links.Count, routesBefore = before.Routes.Count, addressesBefore = before.Addresses.Count;

        var live = new List<(TestPod Pod, string Id)>();
        for (int round = 0; round < rounds; round++)
        {
            var next = Enumerable.Range(0, group).Select(i => (Pod: node.AddPod(), Id: $"r{round}p{i}")).ToList();
            var results = new ConcurrentDictionary<string, CniCall>();
            var adds = next.Select(p => (Action)(() => results[p.Id] = cni.Add(config, p.Pod, p.Id).Succeeded()));
            var dels = live.Select(p => (Action)(() => cni.Del(config, p.Pod, p.Id).Succeeded()));
            AllAtOnce(adds.Concat(dels));

            foreach (var (pod, id) in live)
                Assert.Null(pod.Client.TryGetLink("eth0"));
            live = next;
            var addresses = live.Select(p => AddressOnEth0(p.Pod)).ToList();
            Assert.True(addresses.Distinct().Count() == group, $"round {round}: duplicate addresses {string.Join(", ", addresses)}");
            Assert.Equal(live.Select(p => AddressOf(results[p.Id]).Address.ToString()).Order(), addresses.Order());
            // One host route per live pod through the host-side slave, no more.
            var hostRoutes = node.Client.ListRoutes().Where(r => r.Destination.PrefixLength == 32 && r.Scope == RouteScope.Link).ToList();
            Assert.Equal(group, hostRoutes.Count);
        }
        AllAtOnce(live.Select(p => (Action)(() => cni.Del(config, p.Pod, p.Id).Succeeded())));

        var after = NodeSnapshot.Take(node);
        Assert.Equal((linksBefore, routesBefore, addressesBefore), (after.Links.Count, after.Routes.Count, after.Addresses.Count));
        after.AssertSameAs(before, "ADD/DEL storms");
        Assert.Empty(Residue.Files(cni));

        static string AddressOnEth0(TestPod pod)
        {
            var eth0 = pod.Client.GetLink("eth0");
            return pod.Client.ListAddresses(System.Net.Sockets.AddressFamily.InterNetwork, eth0.Index).Single().Prefix.Address.ToString();
        }
    }
}
