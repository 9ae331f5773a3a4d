using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Qcow.Benchmarks.ClusterCompareBenchmarks).Assembly).Run(args);
