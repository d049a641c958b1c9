using System.Diagnostics;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Plugin;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>
/// kill -9 in the middle of ADD, at every named step and at random moments: the attachment record written first lets
/// DEL (or GC) remove everything the dead ADD had done, and nothing else.
/// </summary>
public class CrashConsistencyTests : KernelTest
{
    /// <summary>Random SIGKILLs per run of `make test`; IPVLANCNI_CRASH_KILLS raises it.</summary>
    static int RandomKills => int.TryParse(Environment.GetEnvironmentVariable("IPVLANCNI_CRASH_KILLS"), out int n) && n > 0 ? n : 6;

    const int Killed = 137; // 128 + SIGKILL

    static Dictionary<string, string> AddEnvironment(TestPod pod, string containerId, string? fault = null)
    {
        var env = CniRuntime.Environment("ADD", containerId, pod.Path, "eth0");
        if (fault is not null)
            env[FaultPoints.Variable] = fault;
        return env;
    }

    /// <summary>The node after one full ADD/DEL: the lock files and folders exist, nothing else of ours does.</summary>
    static NodeSnapshot Baseline(TestNode node, PluginRunner cni, System.Text.Json.Nodes.JsonObject config)
    {
        var pod = node.AddPod();
        cni.Add(config, pod, "warmup").Succeeded();
        cni.Del(config, pod, "warmup").Succeeded();
        Assert.Empty(Residue.Files(cni));
        return NodeSnapshot.Take(node);
    }

    static void AssertNothingLeft(TestNode node, PluginRunner cni, NodeSnapshot baseline, IEnumerable<TestPod> pods, string what)
    {
        Assert.True(Residue.Files(cni).Count == 0, $"{what}: left {string.Join(", ", Residue.Files(cni))}");
        foreach (var pod in pods)
            Assert.True(Residue.PodLinks(pod).Count == 0, $"{what}: pod {pod.Name} still has {string.Join(", ", Residue.PodLinks(pod))}");
        NodeSnapshot.Take(node).AssertSameAs(baseline, what);
    }

    [Fact]
    public void A_crash_at_every_step_of_add_is_undone_by_del()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "crash");
        var baseline = Baseline(node, cni, config);

        foreach (string step in FaultPoints.AddSteps)
        {
            var pod = node.AddPod();
            var crashed = cni.RunRaw(AddEnvironment(pod, "c1", $"{step}:crash"), config.ToJsonString());
            Assert.True(crashed.ExitCode == Killed, $"{step}: expected SIGKILL: {crashed}");

            cni.Del(config, pod, "c1").Succeeded();
            AssertNothingLeft(node, cni, baseline, [pod], $"DEL after a crash at {step}");
        }
    }

    [Fact]
    public void Sigkill_at_random_moments_of_add_is_undone_by_del()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "kill");
        var baseline = Baseline(node, cni, config);

        // Kill anywhere from before main to after the last step: up to a little more than a whole ADD takes here.
        // Timed warm (the first ADD of a node is slower), so that early kills really land inside an ADD.
        var pod0 = node.AddPod();
        cni.Add(config, pod0, "timing").Succeeded();
        cni.Del(config, pod0, "timing").Succeeded();
        var clock = Stopwatch.StartNew();
        cni.Add(config, pod0, "timing").Succeeded();
        int addTime = (int)clock.ElapsedMilliseconds + 1;
        int window = (int)(addTime * 1.2) + 1;
        cni.Del(config, pod0, "timing").Succeeded();

        int seed = Environment.TickCount;
        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>();
        for (int i = 0; i < RandomKills; i++)
        {
            var pod = node.AddPod();
            // The first kill lands in the first half of an ADD for sure; the others anywhere, after its end included.
            int delay = i == 0 ? random.Next(addTime / 2 + 1) : random.Next(window);
            var call = cni.RunRawAndKill(AddEnvironment(pod, $"k{i}"), config.ToJsonString(), TimeSpan.FromMilliseconds(delay));
            string outcome = call.ExitCode switch { Killed => "killed", 0 => "finished", _ => $"exit {call.ExitCode}" };
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;

            cni.Del(config, pod, $"k{i}").Succeeded();
            AssertNothingLeft(node, cni, baseline, [pod], $"DEL after SIGKILL at {delay} ms of {window} (seed {seed}, {outcome})");
        }
        Assert.True(outcomes.GetValueOrDefault("killed") > 0, $"no ADD was killed in a {window} ms window (seed {seed})");
    }

    [Fact]
    public void Gc_with_no_valid_attachments_cleans_up_after_crashes_at_every_step()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "crashgc");
        var baseline = Baseline(node, cni, config);

        var pods = new List<TestPod>();
        foreach (string step in FaultPoints.AddSteps)
        {
            var pod = node.AddPod();
            pods.Add(pod);
            var crashed = cni.RunRaw(AddEnvironment(pod, $"g-{step}", $"{step}:crash"), config.ToJsonString());
            Assert.True(crashed.ExitCode == Killed, $"{step}: expected SIGKILL: {crashed}");
        }
        Assert.NotEmpty(Residue.Files(cni));

        cni.Gc(config).Succeeded();
        AssertNothingLeft(node, cni, baseline, pods, "GC after crashes");
    }
}
