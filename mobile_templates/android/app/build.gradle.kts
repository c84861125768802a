// The demo app: CameraX preview + analysis, ML Kit face detection, landmark and FPS overlay, an accelerator
// switch (CPU / GPU / NPU), and -- in the "benchmark" build type only -- DevicekitBenchmarkActivity for
// `devicekit bench` (DEVICE_PROTOCOL.md). The golden test is in src/androidTest.
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "@@APP_ID@@"
    compileSdk = 36

    defaultConfig {
        applicationId = "@@APP_ID@@"
        minSdk = 24
        targetSdk = 36
        versionCode = 1
        versionName = "1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
        ndk {
            // x86_64 keeps the default Android Studio emulator able to install the APK
            abiFilters += listOf(@@ABI_FILTERS@@)
        }
    }

    // The golden test (src/androidTest) instruments the benchmark build, so the test APK pairs with the APK
    // `devicekit bench` installs and a cloud farm runs (`:app:assembleBenchmarkAndroidTest`, docs/bench.md).
    testBuildType = "benchmark"

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
        // What `devicekit bench` installs: the release configuration (R8, not debuggable: debuggable code is
        // slower), signed with the debug key so it installs without your release keystore, plus
        // DevicekitBenchmarkActivity from src/benchmark/. The release build has no benchmark entry point.
        create("benchmark") {
            initWith(getByName("release"))
            signingConfig = signingConfigs.getByName("debug")
            matchingFallbacks += listOf("release")
            proguardFiles("benchmark-rules.pro")  // the golden test calls the library's API in the minified app
        }
    }

    androidResources {
        noCompress += "tflite"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(project(":@@LIB_MODULE@@"))
    implementation(libs.camerax.core)
    implementation(libs.camerax.camera2)
    implementation(libs.camerax.lifecycle)
    implementation(libs.camerax.view)
    implementation(libs.mlkit.face)
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.material)
    androidTestImplementation(libs.androidx.test.ext.junit)
    androidTestImplementation(libs.androidx.test.runner)
    androidTestImplementation(libs.junit)
}
