namespace IpvlanCni.Explain.Tests;

/// <summary>
/// The explanation text of the main cases on the demo node's recorded snapshots, compared exactly with Golden/: a
/// change of wording or of the model's path is a visible diff. IPVLANCNI_UPDATE_GOLDEN=1 rewrites the files (then
/// read the diff before committing it).
/// </summary>
public sealed class GoldenTests
{
    // Pods per recorded deployment (Snapshots/<mode>-<setup>.json): l2 A/B = p1/p2 (plain), p3/p4 (host), p5/p6
    // (egress); l3 A/B/C = p7-p9, p10-p12, p13-p15; l3s p16-p18, p19-p21, p22-p24. A pod's first address ends in .10.
    public static TheoryData<string, string, string, string> Cases => new()
    {
        { "l3-pod-to-node-no-host-access", "l3-plain", "demo-p7", "192.168.3.1" },
        { "l3-pod-to-node", "l3-host", "demo-p10", "192.168.3.1" },
        { "l3-node-to-pod-no-host-access-v6", "l3-plain", "node", "fd00:0:200:1::10" },
        { "l3-node-to-pod-v6", "l3-host", "node", "fd00:0:200:1::10" },
        { "l3-pod-to-master-address", "l3-plain", "demo-p7", "10.200.0.1" },
        { "l3-pod-to-pod-other-subnet", "l3-plain", "demo-p7", "10.200.2.10" },
        { "l3-pod-behind-node-v4", "l3-egress", "demo-p13", "192.168.3.254" },
        { "l2-pod-to-node-no-host-access", "l2-plain", "demo-p1", "192.168.3.1" },
        { "l2-pod-to-node-v6", "l2-host", "demo-p3", "fd00:0:3::1" },
        { "l2-pod-to-pod-v6", "l2-plain", "demo-p1", "fd00:0:100::11" },
        { "l2-pod-to-peer", "l2-plain", "demo-p1", "10.100.0.254" },
        { "l2-pod-behind-node", "l2-egress", "demo-p5", "192.168.3.254" },
        { "l3s-pod-to-peer", "l3s-plain", "demo-p16", "10.250.0.254" },
        { "l3s-node-to-pod", "l3s-host", "node", "10.250.1.10" },
        { "l3s-pod-behind-node-v6", "l3s-egress", "demo-p22", "fd00:0:3::254" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Explanation_text_is_the_golden_one(string name, string snapshot, string from, string to)
    {
        string text = Replay.Explain(snapshot, from, to).ToText();
        string golden = Path.Combine(AppContext.BaseDirectory, "Golden", $"{name}.txt");
        if (Environment.GetEnvironmentVariable("IPVLANCNI_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(Path.Combine(SourceDirectory(), "Golden", $"{name}.txt"), text);
            return;
        }
        Assert.True(File.Exists(golden), $"no golden file {name}.txt; run with IPVLANCNI_UPDATE_GOLDEN=1 and review it:\n{text}");
        Assert.Equal(File.ReadAllText(golden), text);
    }

    static string SourceDirectory([System.Runtime.CompilerServices.CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
