using System.Diagnostics;
using IpvlanCni.Cni;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>The agent reads etcd's TLS files through the one bounded reader: a FIFO cannot hang its slot, /dev/zero cannot fill it.</summary>
public class TlsFileTests
{
    [Fact]
    public void A_fifo_or_a_device_as_a_tls_file_is_code_7_naming_the_key_promptly()
    {
        var folder = Directory.CreateTempSubdirectory().FullName;
        try
        {
            string fifo = Path.Combine(folder, "ca.pem");
            using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!)
                mkfifo.WaitForExit();
            foreach (var (key, path) in new[] { ("etcdCaFile", fifo), ("etcdCaFile", "/dev/zero") })
            {
                var config = TestConfig.Parse("n1", "[[{\"subnet\":\"10.1.0.0/16\"}]]", $"\"{key}\":\"{path}\"", "\"https://127.0.0.1:2379\"");
                var clock = Stopwatch.StartNew();
                var e = Assert.Throws<CniException>(() => new EtcdKvStore(config).Dispose());
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{path} took {clock.Elapsed}");
                Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
                Assert.Contains($"ipam.{key}", e.Message);
                Assert.Contains("is not a regular file", e.Message);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
