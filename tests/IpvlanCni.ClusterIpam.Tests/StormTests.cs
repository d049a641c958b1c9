using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;
using Xunit.Abstractions;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>
/// Dozens of simulated nodes allocating and releasing at once against a three-member etcd. Most nodes run the engine
/// in process; the others are real processes: the published `ipvlan-cni-ipam` plugin per ADD/DEL asking a published
/// agent, with plugin processes SIGKILLed at random moments and agents SIGKILLed and restarted. Meanwhile the etcd
/// leader is killed, moved (MoveLeader) and paused, and a member is restarted. The oracle reads everything at one
/// revision, during and after: never two owners of an address, no ADD that succeeded lost before its DEL began, and
/// after the runtime's retried DELs and a GC (the backstop for killed ADDs the runtime never DELs) nothing leaked;
/// filling the range afterwards yields exactly what is left. `make soak` runs it longer (IPVLANCNI_ETCD_STORM_SECONDS).
/// </summary>
[Collection(StormTests.Alone)]
public class StormTests(ITestOutputHelper output)
{
    /// <summary>Alone: its hundreds of processes and killed members would stretch the deadlines other classes time.</summary>
    public const string Alone = "storm";

    const string Range = """[[{"subnet":"10.77.0.0/24"}]]"""; // 254 usable less the gateway: 253
    const int Capacity = 253;
    const int Nodes = 24;
    /// <summary>Nodes 0..15 in process; 16..23 through the published plugin and agents (two nodes per agent).</summary>
    const int ProcessNodes = 8;
    const int Agents = 4;

    static int Seconds => int.TryParse(Environment.GetEnvironmentVariable("IPVLANCNI_ETCD_STORM_SECONDS"), out int s) ? s : 25;

    static bool IsProcessNode(int node) => node >= Nodes - ProcessNodes;

    /// <summary>Held: ADD succeeded, no DEL sent. Releasing: DEL sent, not yet succeeded. Unsure: ADD failed or was
    /// killed (it may have committed), the runtime will DEL it. Abandoned: a killed ADD the runtime never DELs (GC's job).</summary>
    enum State { Held, Releasing, Unsure, Abandoned }

    /// <summary>What the runtime believes about one attachment (container IDs are unique over the run).</summary>
    sealed record Entry(int Node, string Cid, string? Ip, State State);

    enum Outcome { Ok, Failed, Killed, Exhausted }

    [Fact]
    public void StormOnAThreeMemberClusterWithPluginsAgentsMembersAndLeadersKilled()
    {
        using var cluster = new EtcdCluster(3);
        var agents = Enumerable.Range(0, Agents).Select(i => new AgentProcess($"storm{i}")).ToArray();
        try
        {
            Storm(cluster, agents);
        }
        finally
        {
            foreach (var a in agents)
                a.Dispose();
        }
    }

    void Storm(EtcdCluster cluster, AgentProcess[] agents)
    {
        const string Extra = "\"blockSize\":8,\"timeoutSeconds\":8";
        var configs = Enumerable.Range(0, Nodes).Select(i => Parse($"node{i}", Range, Extra, cluster.EndpointsJson, "storm")).ToArray();
        AgentProcess AgentOf(int node) => agents[(node - (Nodes - ProcessNodes)) % Agents];
        string PluginConfig(int node) => "{\"cniVersion\":\"1.1.0\",\"name\":\"storm\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"ipvlan-cni-ipam\",\"node\":\"node" + node +
            "\",\"agentSocket\":\"" + AgentOf(node).Socket + "\",\"etcdEndpoints\":[" + cluster.EndpointsJson + "],\"ranges\":" + Range + "," + Extra + "}}";
        var stores = configs.Select(c => new EtcdKvStore(c)).ToArray();
        var engines = stores.Select(s => new ClusterIpamEngine(s)).ToArray();
        var entries = new ConcurrentDictionary<string, Entry>();
        var problems = new ConcurrentQueue<string>();
        var reasons = new ConcurrentDictionary<string, int>();
        long collectedDuringStorm = 0;
        long adds = 0, dels = 0, failures = 0, exhausted = 0, checks = 0, spawned = 0, killedPlugins = 0, agentKills = 0;
        var until = DateTime.UtcNow.AddSeconds(Seconds);

        void Count(string reason) => reasons.AddOrUpdate(reason, 1, (_, c) => c + 1);

        // One CNI call through the published plugin, SIGKILLed at a random moment now and then.
        (Outcome, string?) ProcessCall(int node, string command, string cid, Random random, bool mayKill)
        {
            Interlocked.Increment(ref spawned);
            using var p = Published.StartPlugin(command, cid, PluginConfig(node));
            if (mayKill && random.Next(5) == 0)
            {
                Thread.Sleep(random.Next(0, 60));
                try
                {
                    p.Kill(); // SIGKILL, unless it already exited
                }
                catch (InvalidOperationException)
                {
                }
            }
            var (code, stdout) = Published.Finish(p);
            if (code == 137)
            {
                Interlocked.Increment(ref killedPlugins);
                return (Outcome.Killed, null);
            }
            using var doc = JsonDocument.Parse(stdout.Length > 0 ? stdout : "{}");
            if (code == 0)
                return (Outcome.Ok, command == "ADD" ? IpMath.Format(IpPrefix(doc.RootElement.GetProperty("ips")[0].GetProperty("address").GetString()!).Address) : null);
            int cniCode = doc.RootElement.TryGetProperty("code", out var c) ? c.GetInt32() : -1;
            if (cniCode == CniErrorCode.AddressesExhausted)
                return (Outcome.Exhausted, null);
            Count($"plugin code {cniCode}: " + (doc.RootElement.TryGetProperty("msg", out var m) ? new string(m.GetString()!.Take(100).ToArray()) : $"exit {code}"));
            return (Outcome.Failed, null);
        }

        (Outcome, string?) InProcessCall(int node, string command, string cid)
        {
            var config = configs[node];
            try
            {
                if (command == "ADD")
                    return (Outcome.Ok, IpMath.Format(engines[node].Add(config, Att($"node{node}", cid), DateTimeOffset.UtcNow + config.Timeout).Addresses[0].Address.Address));
                engines[node].Release(config, Att($"node{node}", cid), DateTimeOffset.UtcNow + config.Timeout);
                return (Outcome.Ok, null);
            }
            catch (CniException e) when (e.Code == CniErrorCode.AddressesExhausted)
            {
                return (Outcome.Exhausted, null);
            }
            catch (Exception e) when (e is StoreUnavailableException or CniException)
            {
                Count(Reason(e));
                return (Outcome.Failed, null);
            }
        }

        (Outcome, string?) Call(int node, string command, string cid, Random random, bool mayKill = true) =>
            IsProcessNode(node) ? ProcessCall(node, command, cid, random, mayKill) : InProcessCall(node, command, cid);

        void Del(int node, Entry e, Random random)
        {
            // From the moment a DEL is sent the address may be gone: the runtime no longer counts on it.
            entries[e.Cid] = e with { State = e.State == State.Unsure ? State.Unsure : State.Releasing };
            var (outcome, _) = Call(node, "DEL", e.Cid, random);
            if (outcome == Outcome.Ok)
            {
                entries.TryRemove(e.Cid, out _);
                Interlocked.Increment(ref dels);
            }
            else
            {
                Interlocked.Increment(ref failures); // retried later
                Thread.Sleep(100);
            }
        }

        void Worker(int node)
        {
            try
            {
                Work(node);
            }
            catch (Exception e)
            {
                problems.Enqueue($"node{node}: {e}");
            }
        }

        void Work(int node)
        {
            var random = new Random(node);
            int n = 0;
            while (DateTime.UtcNow < until)
            {
                var mine = entries.Values.Where(e => e.Node == node).ToList();
                var held = mine.Where(e => e.State == State.Held).ToList();
                var pending = mine.Where(e => e.State != State.Held).ToList();
                if (random.Next(40) == 0)
                {
                    // The runtime's GC now and then: this node's attachments but the abandoned ones are valid. It may
                    // release only abandoned ADDs (a killed one still in its agent can commit later: the next GC's).
                    var valid = mine.Where(e => e.State != State.Abandoned).Select(e => (e.Cid, "eth0")).ToList();
                    try
                    {
                        foreach (var id in engines[node].GarbageCollect(configs[node], $"node{node}", valid, "storm-gc", 0, DateTimeOffset.UtcNow + configs[node].Timeout))
                            if (!entries.TryGetValue(id.Split('/')[1], out var e) || e.State != State.Abandoned)
                                problems.Enqueue($"GC released {id}, which the runtime holds");
                            else
                                Interlocked.Increment(ref collectedDuringStorm);
                    }
                    catch (Exception e) when (e is StoreUnavailableException or CniException)
                    {
                        Count(Reason(e));
                    }
                }
                else if (pending.Count > 0 && random.Next(3) == 0)
                {
                    // The runtime retries a DEL that failed, or DELs an ADD that failed (it may have committed).
                    // Some killed ADDs it never DELs: GC is the backstop for those (below).
                    var e = pending[random.Next(pending.Count)];
                    if (e.State == State.Unsure && random.Next(4) == 0)
                        entries[e.Cid] = e with { State = State.Abandoned };
                    else if (e.State != State.Abandoned)
                        Del(node, e, random);
                }
                else if (held.Count == 0 || (random.Next(3) != 0 && held.Count < 14))
                {
                    string cid = $"n{node}c{n++}";
                    var (outcome, ip) = Call(node, "ADD", cid, random);
                    switch (outcome)
                    {
                        case Outcome.Ok:
                            entries[cid] = new Entry(node, cid, ip, State.Held);
                            Interlocked.Increment(ref adds);
                            // A repeated ADD (the runtime retrying) answers the same address.
                            if (random.Next(8) == 0 && Call(node, "ADD", cid, random, mayKill: false) is var (o2, ip2) && o2 == Outcome.Ok && ip2 != ip)
                                problems.Enqueue($"repeated ADD of {cid} answered {ip2}, not {ip}");
                            break;
                        case Outcome.Exhausted:
                            Interlocked.Increment(ref exhausted);
                            break;
                        default:
                            // Failed or killed: it may or may not have committed; the runtime DELs it later.
                            entries[cid] = new Entry(node, cid, null, State.Unsure);
                            Interlocked.Increment(ref failures);
                            Thread.Sleep(100);
                            break;
                    }
                }
                else
                    Del(node, held[random.Next(held.Count)], random);
            }
        }

        // Held before and after the read and live in it: an ADD that succeeded is never lost before its DEL began.
        void CheckNothingLost(ClusterView view, Dictionary<string, string?> heldBefore)
        {
            var live = view.LiveAttachments.ToDictionary(a => a.Record.Owner!.ContainerId, a => IpMath.Format(a.Record.Addresses[0].Address.Address));
            foreach (var (cid, ip) in heldBefore)
                if (entries.TryGetValue(cid, out var now) && now.State == State.Held && (!live.TryGetValue(cid, out var seen) || seen != ip))
                    problems.Enqueue($"revision {view.Revision}: {cid} got {ip} and was not released, but etcd holds {(seen is null ? "nothing" : seen)}");
        }

        Dictionary<string, string?> Held() => entries.Values.Where(e => e.State == State.Held).ToDictionary(e => e.Cid, e => e.Ip);

        void Oracle()
        {
            while (DateTime.UtcNow < until)
            {
                try
                {
                    var before = Held();
                    var view = ClusterView.Read(stores[0], configs[0], DateTimeOffset.UtcNow.AddSeconds(3));
                    foreach (var p in view.Check())
                        problems.Enqueue($"revision {view.Revision}: {p}");
                    CheckNothingLost(view, before);
                    Interlocked.Increment(ref checks);
                }
                catch (StoreUnavailableException)
                {
                }
                Thread.Sleep(300);
            }
        }

        var faults = new List<string>();
        void Faults()
        {
            var random = new Random(7);
            Thread.Sleep(1500);
            int step = 0;
            while (DateTime.UtcNow < until.AddSeconds(-3))
            {
                var leader = cluster.Leader();
                switch (step++ % 5)
                {
                    case 0 when leader is not null:
                        faults.Add($"kill leader {leader.Name}");
                        cluster.Kill(leader);
                        Thread.Sleep(1500);
                        cluster.Start(leader);
                        break;
                    case 1 when leader is not null:
                        if (cluster.Members.Where(m => m != leader && m.Running).OrderBy(_ => random.Next()).FirstOrDefault() is { } target)
                            faults.Add($"move leader {leader.Name} -> {target.Name}: {(cluster.MoveLeader(leader, target) ? "moved" : "refused")}");
                        break;
                    case 2:
                        var agent = agents[random.Next(agents.Length)];
                        faults.Add("SIGKILL an agent");
                        agent.Kill();
                        Interlocked.Increment(ref agentKills);
                        Thread.Sleep(300);
                        agent.Start();
                        break;
                    case 3:
                        var follower = cluster.Members.First(m => m != leader);
                        faults.Add($"restart member {follower.Name}");
                        cluster.Restart(follower);
                        break;
                    case 4 when leader is not null:
                        faults.Add($"pause leader {leader.Name} 2 s");
                        cluster.Pause(leader);
                        Thread.Sleep(2000);
                        cluster.Resume(leader);
                        break;
                }
                Thread.Sleep(1000 + random.Next(1500));
            }
        }

        var threads = Enumerable.Range(0, Nodes).Select(i => new Thread(() => Worker(i))).Append(new Thread(Oracle)).Append(new Thread(Faults)).ToList();
        var clock = Stopwatch.StartNew();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        cluster.WaitHealthy(TimeSpan.FromSeconds(20));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0} s, {Nodes} nodes ({ProcessNodes} through {Agents} published agents): {adds} ADDs, {dels} DELs, " +
            $"{failures} failed (faults), {exhausted} exhausted, {checks} oracle reads; {spawned} plugin processes, {killedPlugins} SIGKILLed, {agentKills} agents SIGKILLed");
        output.WriteLine($"faults: {string.Join("; ", faults)}");
        foreach (var (why, count) in reasons.OrderByDescending(r => r.Value).Take(8))
            output.WriteLine($"  {count} x {why}");
        Assert.Empty(problems);
        Assert.Contains(faults, f => f.StartsWith("move leader") && f.EndsWith("moved"));

        // A killed plugin's request may still run in its agent: SIGTERM lets each finish what is in flight (the
        // agent's bounded shutdown), then they start again for the runtime's retries.
        foreach (var a in agents)
        {
            Assert.True(a.Stop(), "an agent did not stop on SIGTERM");
            a.Start();
        }
        // The runtime's DEL for every failed ADD and DEL it still retries, until etcd answers (no more kills).
        var random = new Random(1);
        foreach (var e in entries.Values.Where(e => e.State is State.Unsure or State.Releasing))
        {
            Retry(() => Call(e.Node, "DEL", e.Cid, random, mayKill: false).Item1 == Outcome.Ok ? true : throw new StoreUnavailableException("DEL failed"));
            entries.TryRemove(e.Cid, out _);
        }

        // GC with each node's valid list (what its runtime holds) releases exactly the killed ADDs nobody DELed.
        var neverDeleted = entries.Values.Where(e => e.State == State.Abandoned).Select(e => e.Cid).ToHashSet();
        var collected = new List<string>();
        for (int i = 0; i < Nodes; i++)
        {
            var valid = entries.Values.Where(e => e.Node == i && e.State == State.Held).Select(e => (e.Cid, "eth0")).ToList();
            // Another boot id: the grace for ADDs racing the runtime's list does not apply.
            collected.AddRange(engines[i].GarbageCollect(configs[i], $"node{i}", valid, "after-the-storm", 0, Soon).Select(id => id.Split('/')[1]));
        }
        // Each abandoned ADD either committed (GC releases it) or did not (nothing to release); GC releases nothing else.
        Assert.Subset(neverDeleted, collected.ToHashSet());
        foreach (var cid in neverDeleted)
            entries.TryRemove(cid, out _);

        var final = ClusterView.Read(stores[0], configs[0], Soon);
        Assert.Empty(final.Check());
        // Nothing lost, nothing leaked: etcd holds exactly what the runtimes hold, at the addresses they were given.
        var live = final.LiveAttachments.ToDictionary(a => a.Record.Owner!.ContainerId, a => IpMath.Format(a.Record.Addresses[0].Address.Address));
        var held = Held();
        Assert.Equal(held.Keys.Order(StringComparer.Ordinal), live.Keys.Order(StringComparer.Ordinal));
        foreach (var (cid, ip) in held)
            Assert.Equal(ip, live[cid]);
        output.WriteLine($"after the storm: {held.Count} held; GC released {collectedDuringStorm} during it and {collected.Count} after it ({neverDeleted.Count} killed ADDs never DELed)");
        // Filling the range from several nodes yields exactly what is left.
        int filled = 0;
        for (int i = 0; ; i++)
        {
            try
            {
                engines[i % Nodes].Add(configs[i % Nodes], Att($"node{i % Nodes}", $"fill{i}"), Soon);
                filled++;
            }
            catch (CniException e) when (e.Code == CniErrorCode.AddressesExhausted)
            {
                break;
            }
        }
        Assert.Equal(Capacity - held.Count, filled);
        Assert.Empty(ClusterView.Read(stores[0], configs[0], Soon).Check());
        foreach (var s in stores)
            s.Dispose();
    }

    static IpvlanCni.Network.IpPrefix IpPrefix(string s) => IpvlanCni.Network.IpPrefix.Parse(s);

    static string Reason(Exception e) => (e is CniException c ? $"code {c.Code}: " : "store: ") + new string(e.Message.Take(140).ToArray());

    static void Retry(Func<bool> action)
    {
        for (int i = 0; ; i++)
        {
            try
            {
                action();
                return;
            }
            catch (Exception e) when ((e is StoreUnavailableException || e is CniException { Code: CniErrorCode.TryAgainLater }) && i < 20)
            {
                Thread.Sleep(500);
            }
        }
    }
}

[CollectionDefinition(StormTests.Alone, DisableParallelization = true)]
public sealed class StormCollection;
