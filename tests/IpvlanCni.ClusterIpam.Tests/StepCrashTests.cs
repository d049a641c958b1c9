using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;
using Xunit.Abstractions;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>The process died: nothing after this point of the request runs (the engine catches no such thing).</summary>
sealed class KilledException() : Exception("killed");

/// <summary>
/// The real etcd store, with a deterministic kill at its k-th request: before the request leaves, or (for a write)
/// after etcd applied it and before the answer is seen, as when the agent is SIGKILLed with a Txn in flight.
/// </summary>
sealed class KillAtRequest(IKvStore inner, int killAt, bool afterApply) : IKvStore
{
    /// <summary>Requests since <see cref="Arm"/>; before it, nothing is killed (the setup of a case).</summary>
    public int Requests { get; private set; } = int.MinValue;

    public void Arm() => Requests = 0;
    /// <summary>What the k-th request was (null: the operation made fewer requests and finished).</summary>
    public string? KilledAt { get; private set; }

    T Step<T>(string what, bool write, Func<T> call)
    {
        if (++Requests != killAt)
            return call();
        KilledAt = what;
        if (afterApply && write)
            call();
        throw new KilledException();
    }

    public Snapshot Read(IReadOnlyList<Read> reads, DateTimeOffset deadline) => Step("read", false, () => inner.Read(reads, deadline));
    public TxnOutcome Commit(Txn txn, DateTimeOffset deadline) => Step("commit", true, () => inner.Commit(txn, deadline));
    public long GrantLease(int seconds, DateTimeOffset deadline) => Step("lease", true, () => inner.GrantLease(seconds, deadline));
}

/// <summary>
/// ADD, DEL and GC killed at every one of their etcd requests in turn (before it is sent, and after a write applied),
/// then the runtime's retry with a restarted agent (a fresh engine: no cached blocks). Every case converges: no address
/// with two owners, an ADD that succeeded is never lost before its DEL, a retried ADD answers what the killed one
/// committed, a DEL after a killed ADD leaves nothing, and filling the range gives exactly what is free.
/// </summary>
public sealed class StepCrashTests(SingleEtcd etcd, ITestOutputHelper output) : IClassFixture<SingleEtcd>
{
    // A /28 with blocks of 4: 13 addresses (the gateway .1 is never handed out) in four blocks; each case its own network.
    const int Capacity = 13;
    static int _networks;

    ClusterIpamConfig Config(string network, string node) =>
        Parse(node, """[[{"subnet":"10.88.0.0/28"}]]""", "\"blockSize\":4,\"maxBlocksPerNode\":1,\"timeoutSeconds\":5", etcd.Cluster.EndpointsJson, network);

    /// <summary>How the node looks before the killed request, per scenario.</summary>
    static readonly Dictionary<string, Action<ClusterIpamEngine, Func<string, ClusterIpamConfig>>> Setups = new()
    {
        // The node's first ADD: it claims a block in the same Txn.
        ["add claiming a block"] = (_, _) => { },
        // The steady state: the node owns a block with room.
        ["add in the node's block"] = (e, c) => e.Add(c("n1"), Att("n1", "warm"), Soon),
        // Every block is someone else's: the node borrows.
        ["add borrowing"] = (e, c) =>
        {
            for (int i = 2; i <= 5; i++)
                e.Add(c($"n{i}"), Att($"n{i}", $"warm{i}"), Soon);
        },
        ["del"] = (e, c) => e.Add(c("n1"), Att("n1", "c"), Soon),
        ["gc"] = (e, c) =>
        {
            e.Add(c("n1"), Att("n1", "c"), Soon);
            e.Add(c("n1"), Att("n1", "keep"), Soon);
        },
    };

    [Fact]
    public void EveryRequestOfAddDelAndGcKilledInTurnConverges()
    {
        var steps = new List<string>();
        foreach (var (scenario, setup) in Setups)
        {
            int requests = 0;
            for (int k = 1; ; k++)
            {
                bool finished = false;
                foreach (bool after in new[] { false, true })
                {
                    var outcome = RunCase(scenario, setup, k, after);
                    if (outcome is null)
                    {
                        finished = true;
                        break;
                    }
                    if (!outcome.Value.Write)
                        break; // killing after a read is killing before it: nothing was changed either way
                }
                if (finished)
                    break;
                requests = k;
                Assert.True(k < 20, $"{scenario}: more than 20 requests");
            }
            steps.Add($"{scenario}: {requests} request(s)");
        }
        output.WriteLine($"killed at every request: {string.Join("; ", steps)}");
        // The counts the design names: a steady-state ADD is a read and a commit; DEL a read, a lease and a commit.
        Assert.Contains("add in the node's block: 2 request(s)", steps);
        Assert.Contains("del: 3 request(s)", steps);
    }

    /// <summary>One case on a network of its own; null when the operation made fewer than k requests (nothing was killed).</summary>
    (string What, bool Write)? RunCase(string scenario, Action<ClusterIpamEngine, Func<string, ClusterIpamConfig>> setup, int k, bool after)
    {
        string network = $"step{Interlocked.Increment(ref _networks)}";
        ClusterIpamConfig C(string node) => Config(network, node);
        using var store = new EtcdKvStore(C("n1"));
        // The setup runs through the engine that is killed later, so it knows the node's blocks as a running agent does.
        var killer = new KillAtRequest(store, k, after);
        var doomed = new ClusterIpamEngine(killer);
        setup(doomed, C);
        var before = ClusterView.Read(store, C("n1"), Soon);
        killer.Arm();
        string label = $"{scenario}, killed {(after ? "after" : "before")} request {k}";
        try
        {
            switch (scenario)
            {
                case "del":
                    doomed.Release(C("n1"), Att("n1", "c"), Soon);
                    break;
                case "gc":
                    doomed.GarbageCollect(C("n1"), "n1", [("keep", "eth0")], "boot1", long.MaxValue / 2, Soon);
                    break;
                default:
                    doomed.Add(C("n1"), Att("n1", "c"), Soon);
                    break;
            }
            return null;
        }
        catch (KilledException)
        {
        }
        var killedAt = killer.KilledAt!;
        bool write = killedAt is "commit" or "lease";

        // Whatever the kill left is consistent: one owner per address, every live attachment's keys present.
        var left = ClusterView.Read(store, C("n1"), Soon);
        Assert.True(left.Check().Count == 0, $"{label}: {string.Join("; ", left.Check())}");
        // Nothing lost: what had succeeded before is still held until its DEL (or GC) succeeds.
        foreach (var (kv, record) in before.LiveAttachments)
        {
            bool releasedByThis = (scenario == "del" && record.Owner!.ContainerId == "c") || (scenario == "gc" && record.Owner!.ContainerId == "c");
            bool stillLive = left.LiveAttachments.Any(a => a.Kv.Key == kv.Key && a.Record.Addresses.SequenceEqual(record.Addresses));
            Assert.True(stillLive || (releasedByThis && after && killedAt == "commit"), $"{label}: {record.Owner!.Id} was lost");
        }

        // The runtime retries with a restarted agent (no cached blocks).
        var restarted = new ClusterIpamEngine(store);
        switch (scenario)
        {
            case "del":
                restarted.Release(C("n1"), Att("n1", "c"), Soon);
                break;
            case "gc":
                Assert.Equal(left.LiveAttachments.Any(a => a.Record.Owner!.ContainerId == "c") ? ["n1/c/eth0"] : Array.Empty<string>(),
                    restarted.GarbageCollect(C("n1"), "n1", [("keep", "eth0")], "boot1", long.MaxValue / 2, Soon));
                break;
            default:
                // Half the cases: the runtime repeats ADD (it must answer what the killed ADD committed, if it did), then DELs.
                // The other half: it gives up and DELs; a late ADD afterwards is fenced.
                var committed = left.LiveAttachments.FirstOrDefault(a => a.Record.Owner!.ContainerId == "c");
                if (k % 2 == 0 || after)
                {
                    var again = restarted.Add(C("n1"), Att("n1", "c"), Soon);
                    if (committed.Record is { } r)
                        Assert.Equal(r.Addresses.Select(h => h.Address), again.Addresses.Select(h => h.Address));
                    Assert.Empty(ClusterView.Read(store, C("n1"), Soon).Check());
                }
                restarted.Release(C("n1"), Att("n1", "c"), Soon);
                Assert.Equal(CniErrorCode.UnknownContainer, Assert.Throws<CniException>(() => restarted.Add(C("n1"), Att("n1", "c"), Soon)).Code);
                break;
        }

        var end = ClusterView.Read(store, C("n1"), Soon);
        Assert.True(end.Check().Count == 0, $"{label}: {string.Join("; ", end.Check())}");
        Assert.DoesNotContain(end.LiveAttachments, a => a.Record.Owner!.ContainerId == "c");
        // ... and every other attachment kept its addresses throughout.
        foreach (var (kv, record) in before.LiveAttachments.Where(a => a.Record.Owner!.ContainerId != "c"))
            Assert.True(end.LiveAttachments.Any(a => a.Kv.Key == kv.Key && a.Record.Addresses.SequenceEqual(record.Addresses)), $"{label}: {record.Owner!.Id} was lost");
        // Filling the range from two nodes yields exactly what is free: nothing leaked.
        int live = end.LiveAttachments.Count(), filled = 0;
        for (int i = 0; ; i++)
        {
            try
            {
                restarted.Add(C($"f{i % 2}"), Att($"f{i % 2}", $"fill{i}"), Soon);
                filled++;
            }
            catch (CniException e) when (e.Code == CniErrorCode.AddressesExhausted)
            {
                break;
            }
        }
        Assert.True(Capacity - live == filled, $"{label}: filled {filled}, expected {Capacity - live}");
        return (killedAt, write);
    }
}
