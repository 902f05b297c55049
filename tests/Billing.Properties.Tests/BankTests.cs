using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace Billing.Properties.Tests;

/// <summary>
/// Runs tests/Billing.Bank (2 silos, the gateway when built, a throwaway PostgreSQL, faults) for a bounded time and
/// asserts it found no violation. The seed is printed; BANK_SEED / BANK_SECONDS override it and the duration.
/// </summary>
public class BankTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Bank_test_keeps_every_invariant_under_faults()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("BANK_SEED"), out var s) ? s : Random.Shared.Next(1, 1_000_000);
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("BANK_SECONDS"), out var d) ? d : 45;
        var root = SqlParameterisationTests.RepoRoot();
        var config = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        var dll = Path.Combine(root, "tests", "Billing.Bank", "bin", config, "net10.0", "Billing.Bank.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");
        output.WriteLine($"bank seed {seed}, {seconds}s (replay: dotnet run --project tests/Billing.Bank -c Release -- --seed {seed} --seconds {seconds})");
        Console.WriteLine($"bank seed {seed}, {seconds}s");

        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "--seed", seed.ToString(CultureInfo.InvariantCulture), "--seconds", seconds.ToString(CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var lines = new List<string>();
        void Collect(object _, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            lock (lines) lines.Add(e.Data);
        }

        process.OutputDataReceived += Collect;
        process.ErrorDataReceived += Collect;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        // Load + recovery + replay + checks: bounded well under 3 minutes for 45 s of load.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds + 135));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lines.Add($"bank did not finish within {seconds + 135}s: killed");
        }

        process.WaitForExit(); // flush the output events
        string text;
        lock (lines) text = string.Join('\n', lines);
        output.WriteLine(text);
        Assert.True(process.ExitCode == 0, $"bank failed (seed {seed}, exit {process.ExitCode}):\n{text}");
    }
}
